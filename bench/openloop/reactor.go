package main

import (
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// The client is one event loop on one OS thread over epoll, like wrk: per request it
// costs a write, a read and an epoll wake-up, where goroutines blocked on net.Conn
// cost several thread hand-offs more, which on 2 shared cores the server would pay
// for. Arrivals are timed with a timerfd, to the microsecond: the Go runtime's own
// timers round short sleeps up to a millisecond, which would bunch arrivals and add
// up to 1 ms of the client's own delay to every latency.

type job struct {
	due      time.Time
	template int
}

// request is one due request from the moment a connection takes it.
type request struct {
	job     job
	lag     time.Duration // due time to the start of its exchange
	conn    *conn
	done    bool
	retried bool
}

type connState int

const (
	connecting connState = iota
	ready                // connected; busy when req != nil, else idle
	closed
)

type conn struct {
	fd        int
	state     connState
	req       *request
	written   int
	buf       []byte
	exchanges int  // completed on this connection
	wantOut   bool // registered for EPOLLOUT
	// The last header values seen, reused while they repeat: no allocation per answer.
	servedBy, modelVersion string
}

type reactor struct {
	addr       syscall.Sockaddr
	family     int
	requests   [][]byte
	timeout    time.Duration
	maxConns   int
	epfd       int
	timerfd    int
	armedFor   time.Time
	conns      map[int]*conn
	idle       []*conn // a stack: the most recently used connection goes first
	open       int
	opened     int
	peak       int
	pending    []job      // due, waiting for a connection, in due order
	inFlight   []*request // in start order, hence in deadline order
	outcomes   []outcome
	readBuffer int
}

func newReactor(target string, requests [][]byte, timeout time.Duration,
	maxConns int) (*reactor, error) {
	tcp, err := net.ResolveTCPAddr("tcp", target)
	if err != nil {
		return nil, err
	}
	r := &reactor{requests: requests, timeout: timeout, maxConns: maxConns,
		conns: map[int]*conn{}, readBuffer: 16 << 10}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		addr := &syscall.SockaddrInet4{Port: tcp.Port}
		copy(addr.Addr[:], ip4)
		r.addr, r.family = addr, syscall.AF_INET
	} else {
		addr := &syscall.SockaddrInet6{Port: tcp.Port}
		copy(addr.Addr[:], tcp.IP.To16())
		r.addr, r.family = addr, syscall.AF_INET6
	}
	if r.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	const tfdNonblock, tfdCloexec = syscall.O_NONBLOCK, syscall.O_CLOEXEC
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, 1, /* CLOCK_MONOTONIC */
		tfdNonblock|tfdCloexec, 0)
	if errno != 0 {
		return nil, fmt.Errorf("timerfd_create: %w", errno)
	}
	r.timerfd = int(fd)
	// Edge-triggered: each expiry wakes the loop once, and the timer need not be read.
	event := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLET&0xffffffff,
		Fd: int32(r.timerfd)}
	if err = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, r.timerfd, &event); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reactor) close() {
	for _, c := range r.conns {
		syscall.Close(c.fd)
	}
	syscall.Close(r.timerfd)
	syscall.Close(r.epfd)
}

// run takes arrivals from next (ok false: no more) until all are answered or timed out.
func (r *reactor) run(next func() (job, bool)) error {
	upcoming, more := next()
	events := make([]syscall.EpollEvent, 256)
	for {
		now := time.Now()
		for more && !upcoming.due.After(now) {
			r.pending = append(r.pending, upcoming)
			upcoming, more = next()
		}
		r.expire(now)
		r.dispatch(now)
		if !more && len(r.pending) == 0 && len(r.inFlight) == 0 {
			return nil
		}
		var wake time.Time
		if more {
			wake = upcoming.due
		}
		if len(r.pending) > 0 {
			wake = earliest(wake, r.pending[0].due.Add(r.timeout))
		}
		if len(r.inFlight) > 0 {
			wake = earliest(wake, r.inFlight[0].job.due.Add(r.timeout))
		}
		wait := -1
		if !wake.After(time.Now()) {
			wait = 0
		} else if !wake.Equal(r.armedFor) {
			if err := r.arm(wake); err != nil {
				return err
			}
		}
		n, err := epollWait(r.epfd, events, wait)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, event := range events[:n] {
			if int(event.Fd) == r.timerfd {
				r.armedFor = time.Time{}
			} else if c := r.conns[int(event.Fd)]; c != nil {
				r.handle(c, event.Events)
			}
		}
	}
}

// epollWait is epoll_wait as a raw system call: the Go runtime does not see it, so it
// does not hand this thread's processor to another thread while it sleeps and take it
// back after, which cost more futex and sleep calls than the requests themselves. The
// runtime's preemption signal (every 10 ms of a long wait) interrupts it with EINTR.
func epollWait(epfd int, events []syscall.EpollEvent, msec int) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// arm sets the timerfd to fire at wake (relative: the monotonic clock Go reads).
func (r *reactor) arm(wake time.Time) error {
	spec := [4]int64{0, 0, 0, max(int64(time.Until(wake)), 1000)} // interval, value
	spec[2], spec[3] = spec[3]/1e9, spec[3]%1e9
	_, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(r.timerfd), 0,
		uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("timerfd_settime: %w", errno)
	}
	r.armedFor = wake
	return nil
}

// expire times out requests past their deadline: waiting for a connection, or in
// flight (whose connection is then closed: the answer may still come, too late).
func (r *reactor) expire(now time.Time) {
	for len(r.pending) > 0 && !now.Before(r.pending[0].due.Add(r.timeout)) {
		job := r.pending[0]
		r.pending = r.pending[1:]
		r.outcomes = append(r.outcomes, outcome{template: job.template, status: "timeout",
			latency: r.timeout, lag: r.timeout})
	}
	for len(r.inFlight) > 0 {
		req := r.inFlight[0]
		if !req.done {
			if now.Before(req.job.due.Add(r.timeout)) {
				break
			}
			c := req.conn
			r.finish(req, "timeout", now)
			r.closeConn(c)
		}
		r.inFlight[0] = nil
		r.inFlight = r.inFlight[1:]
	}
}

// dispatch starts waiting requests on idle connections, opening new ones up to the cap.
func (r *reactor) dispatch(now time.Time) {
	for len(r.pending) > 0 {
		c := r.popIdle()
		if c == nil {
			if r.open >= r.maxConns {
				return
			}
			var err error
			if c, err = r.dial(); err != nil {
				job := r.pending[0]
				r.pending = r.pending[1:]
				r.outcomes = append(r.outcomes, outcome{template: job.template,
					status: "connect_error", latency: now.Sub(job.due), lag: now.Sub(job.due)})
				continue
			}
		}
		req := &request{job: r.pending[0], lag: now.Sub(r.pending[0].due)}
		r.pending = r.pending[1:]
		r.inFlight = append(r.inFlight, req)
		r.start(c, req)
	}
}

func (r *reactor) popIdle() *conn {
	for len(r.idle) > 0 {
		c := r.idle[len(r.idle)-1]
		r.idle = r.idle[:len(r.idle)-1]
		if c.state == ready && c.req == nil {
			return c
		}
	}
	return nil
}

func (r *reactor) start(c *conn, req *request) {
	c.req, req.conn = req, c
	c.written, c.buf = 0, c.buf[:0]
	if c.state == ready {
		r.write(c)
	} // else the request goes out once the connection is established
}

func (r *reactor) dial() (*conn, error) {
	fd, err := syscall.Socket(r.family,
		syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	c := &conn{fd: fd, state: ready, buf: make([]byte, 0, r.readBuffer)}
	if err = syscall.Connect(fd, r.addr); err == syscall.EINPROGRESS {
		c.state = connecting
	} else if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	event := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
	if c.state == connecting {
		event.Events |= syscall.EPOLLOUT
		c.wantOut = true
	}
	if err = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, fd, &event); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	r.conns[fd] = c
	r.open++
	r.opened++
	r.peak = max(r.peak, r.open)
	return c, nil
}

func (r *reactor) closeConn(c *conn) {
	if c.state == closed {
		return
	}
	syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	delete(r.conns, c.fd)
	c.state = closed
	r.open--
}

func (r *reactor) setWantOut(c *conn, want bool) {
	if c.wantOut == want {
		return
	}
	event := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	if want {
		event.Events |= syscall.EPOLLOUT
	}
	syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_MOD, c.fd, &event)
	c.wantOut = want
}

func (r *reactor) handle(c *conn, events uint32) {
	if c.state == connecting {
		if events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
			return
		}
		if errno, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET,
			syscall.SO_ERROR); err != nil || errno != 0 {
			r.fail(c, "connect_error")
			return
		}
		c.state = ready
		r.write(c)
		return
	}
	if events&syscall.EPOLLOUT != 0 && c.req != nil && c.written < len(r.request(c)) {
		r.write(c)
	}
	if c.state == ready && events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|
		syscall.EPOLLERR) != 0 {
		r.read(c)
	}
}

func (r *reactor) request(c *conn) []byte { return r.requests[c.req.job.template] }

func (r *reactor) write(c *conn) {
	if c.req == nil {
		r.setWantOut(c, false)
		return
	}
	data := r.request(c)
	n, err := syscall.Write(c.fd, data[c.written:])
	switch {
	case err == syscall.EAGAIN:
	case err != nil:
		r.broken(c)
		return
	default:
		c.written += n
	}
	r.setWantOut(c, c.written < len(data))
}

func (r *reactor) read(c *conn) {
	if len(c.buf) == cap(c.buf) {
		c.buf = append(c.buf, make([]byte, cap(c.buf))...)[:len(c.buf)]
	}
	n, err := syscall.Read(c.fd, c.buf[len(c.buf):cap(c.buf)])
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	eof := err != nil || n == 0
	if !eof {
		c.buf = c.buf[:len(c.buf)+n]
	}
	if c.req == nil { // idle: the server closed it (or sent what nobody asked for)
		r.closeConn(c)
		return
	}
	if eof && len(c.buf) == 0 {
		r.broken(c)
		return
	}
	resp, perr := parseResponse(c.buf, eof)
	switch {
	case perr == errIncomplete:
	case perr != nil:
		r.fail(c, "transport_error")
	default:
		r.complete(c, resp, eof)
	}
}

// broken: the connection failed before any byte of the answer. On a kept-alive
// connection that is the server having closed it while idle, so the request never
// reached the application: it is sent once more on a new connection, as HTTP clients
// do. On a fresh connection it is an error.
func (r *reactor) broken(c *conn) {
	req := c.req
	if c.exchanges == 0 || req.retried {
		r.fail(c, "transport_error")
		return
	}
	req.retried = true
	c.req = nil
	r.closeConn(c)
	fresh, err := r.dial()
	if err != nil {
		r.finish(req, "connect_error", time.Now())
		return
	}
	r.start(fresh, req)
}

func (r *reactor) fail(c *conn, status string) {
	if c.req != nil {
		r.finish(c.req, status, time.Now())
	}
	r.closeConn(c)
}

func (r *reactor) complete(c *conn, resp response, eof bool) {
	req := c.req
	o := r.finish(req, statusText(resp.status), time.Now())
	o.servedBy = intern(&c.servedBy, resp.servedBy)
	o.modelVersion = intern(&c.modelVersion, resp.modelVersion)
	c.exchanges++
	if resp.close || eof {
		r.closeConn(c)
		return
	}
	r.idle = append(r.idle, c)
}

// finish records a request's outcome and frees its connection of it.
func (r *reactor) finish(req *request, status string, now time.Time) *outcome {
	req.done = true
	if req.conn != nil && req.conn.req == req {
		req.conn.req = nil
	}
	r.outcomes = append(r.outcomes, outcome{template: req.job.template, status: status,
		latency: now.Sub(req.job.due), lag: req.lag})
	return &r.outcomes[len(r.outcomes)-1]
}

func intern(last *string, value []byte) string {
	if string(value) != *last { // the comparison does not allocate
		*last = string(value)
	}
	return *last
}

var statusTexts = func() [600]string {
	var texts [600]string
	for code := range texts {
		texts[code] = fmt.Sprint(code)
	}
	return texts
}()

func statusText(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return fmt.Sprint(code)
}
