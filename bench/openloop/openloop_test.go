package main

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A real HTTP server on loopback: it names itself in X-Served-By (as the balancer
// does), reports a model version, and sheds the low priority level with 503.
func testServer(t *testing.T, idleTimeout time.Duration) string {
	server := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", "replica-"+r.Header.Get("X-Replica"))
			w.Header().Set("X-Model-Version", "7")
			if r.Header.Get("X-Request-Priority") == "low" {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			w.Write([]byte(`{"predictions": [0.0]}`))
		}))
	server.Config.IdleTimeout = idleTimeout
	server.Start()
	t.Cleanup(server.Close)
	return strings.TrimPrefix(server.URL, "http://")
}

func writeBody(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(`{"inputs": [[1.0]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportCountsByTemplateStatusAndHeader(t *testing.T) {
	body := writeBody(t)
	spec := Spec{
		Target: testServer(t, time.Minute), Rate: 2000, DurationS: 0.5, TimeoutMs: 2000,
		MaxConnections: 64, SLOMs: 50, Seed: 1,
		Templates: []Template{
			{Name: "high", Path: "/invocations", BodyFile: body, Weight: 1,
				Headers: map[string]string{"X-Request-Priority": "high", "X-Replica": "a"}},
			{Name: "low", Path: "/invocations", BodyFile: body, Weight: 4,
				Headers: map[string]string{"X-Request-Priority": "low", "X-Replica": "b"}},
		},
	}
	report, err := run(spec, ".")
	if err != nil {
		t.Fatal(err)
	}
	if report.Sent < 850 || report.Sent > 1150 { // Poisson: 1000 expected, sd ~32
		t.Fatalf("sent %d requests, expected about 1000", report.Sent)
	}
	high, low := report.Templates["high"], report.Templates["low"]
	if high.Requests+low.Requests != report.Sent || report.Total.Requests != report.Sent {
		t.Fatalf("groups do not add up: %+v", report)
	}
	if share := float64(low.Requests) / float64(report.Sent); math.Abs(share-0.8) > 0.06 {
		t.Fatalf("low share %.2f, expected 0.8", share)
	}
	if high.Status["200"] != high.Requests || low.Status["503"] != low.Requests {
		t.Fatalf("statuses high %v low %v", high.Status, low.Status)
	}
	if report.ServedBy["replica-a"].Requests != high.Requests ||
		report.ServedBy["replica-b"].Requests != low.Requests {
		t.Fatalf("served-by counts %v", report.ServedBy)
	}
	if report.ModelVersion["7"] != report.Sent {
		t.Fatalf("model versions %v", report.ModelVersion)
	}
	if high.P50Ms == nil || *high.P99Ms > 50 || high.Good != high.OK || low.P50Ms != nil {
		t.Fatalf("latencies high %+v low %+v", high, low)
	}
}

// The server closes idle keep-alive connections before the next request is due: the
// client must notice and resend on a new connection rather than report an error.
func TestServerClosedIdleConnectionsAreReopened(t *testing.T) {
	spec := Spec{
		Target: testServer(t, 5*time.Millisecond), Rate: 50, DurationS: 0.6,
		TimeoutMs: 2000, MaxConnections: 4, SLOMs: 50, Seed: 2,
		Templates: []Template{{Name: "a", Path: "/", BodyFile: writeBody(t), Weight: 1}},
	}
	report, err := run(spec, ".")
	if err != nil {
		t.Fatal(err)
	}
	if report.Total.OK != report.Sent || report.Sent < 10 {
		t.Fatalf("%d of %d answered 200: %v", report.Total.OK, report.Sent, report.Total.Status)
	}
}

// A server that answers one request per connection and closes the connection when
// the next request arrives on it, without answering: what a client sees when a server
// closes an idle keep-alive connection just as the client reuses it. The client must
// resend such a request once on a new connection.
func TestRequestOnAConnectionClosedUnderItIsResent(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		for {
			c, err := listener.Accept()
			if err != nil {
				return
			}
			go answerOnceThenClose(c)
		}
	}()
	spec := Spec{
		Target: listener.Addr().String(), Rate: 200, DurationS: 0.3, TimeoutMs: 2000,
		MaxConnections: 1, SLOMs: 50, Seed: 4,
		Templates: []Template{{Name: "a", Path: "/", BodyFile: writeBody(t), Weight: 1}},
	}
	report, err := run(spec, ".")
	if err != nil {
		t.Fatal(err)
	}
	if report.Total.OK != report.Sent || report.ConnectionsOpened < report.Sent {
		t.Fatalf("%d of %d answered 200 over %d connections: %v", report.Total.OK,
			report.Sent, report.ConnectionsOpened, report.Total.Status)
	}
}

func answerOnceThenClose(c net.Conn) {
	defer c.Close()
	reader := bufio.NewReader(c)
	for answered := false; ; answered = true {
		length := 0
		for {
			line, err := reader.ReadString('\n')
			if err != nil {
				return
			}
			if name, value, _ := strings.Cut(strings.TrimSpace(line), ":"); strings.EqualFold(
				name, "content-length") {
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			}
			if line == "\r\n" {
				break
			}
		}
		if answered {
			return
		}
		io.CopyN(io.Discard, reader, int64(length))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func TestParseResponseFraming(t *testing.T) {
	chunked := "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n" +
		"X-Served-By: r2\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"
	for cut := 0; cut < len(chunked); cut++ {
		if _, err := parseResponse([]byte(chunked[:cut]), false); err != errIncomplete {
			t.Fatalf("prefix of %d bytes: %v, expected incomplete", cut, err)
		}
	}
	resp, err := parseResponse([]byte(chunked), false)
	if err != nil || resp.status != 503 || string(resp.servedBy) != "r2" {
		t.Fatalf("chunked: %+v %v", resp, err)
	}
	closing := "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nab"
	if _, err = parseResponse([]byte(closing), true); err == nil || err == errIncomplete {
		t.Fatalf("a body cut short by the end of the connection must fail, got %v", err)
	}
	if resp, err = parseResponse([]byte(closing+"c"), false); err != nil || !resp.close {
		t.Fatalf("connection close: %+v %v", resp, err)
	}
}

func TestMMPPKeepsTheMeanRateAndBursts(t *testing.T) {
	onOff := Arrivals{Process: "mmpp", BurstFactor: 4, BurstFraction: 0.25, BurstMeanMs: 20}
	clock, err := newArrivalClock(onOff, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	const seconds = 100
	perBin := make([]int, seconds*1000) // 1 ms bins
	count := 0
	for at := clock.next(); at < seconds; at = clock.next() {
		perBin[int(at*1000)]++
		count++
	}
	if math.Abs(float64(count)/seconds-1000) > 100 { // ~3.5 sd of the burst time's spread
		t.Fatalf("mean rate %.0f/s, expected 1000", float64(count)/seconds)
	}
	// On/off: silent 75% of the time, and a burst at 4000/s leaves a bin empty with
	// probability e^-4; Poisson at the same mean would leave e^-1 = 37% of bins empty.
	silent := 0
	for _, n := range perBin {
		if n == 0 {
			silent++
		}
	}
	if share := float64(silent) / float64(len(perBin)); share < 0.7 || share > 0.8 {
		t.Fatalf("%.2f of the 1 ms bins silent, expected about 0.75", share)
	}
	if _, err = newArrivalClock(Arrivals{Process: "mmpp", BurstFactor: 5, BurstFraction: 0.5,
		BurstMeanMs: 10}, 100, 1); err == nil {
		t.Fatal("burst_fraction * burst_factor > 1 must be refused")
	}
}
