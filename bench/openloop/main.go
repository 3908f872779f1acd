// openloop is an open-loop HTTP/1.1 load generator: requests are due at the times of an
// arrival process (Poisson, or a bursty Markov-modulated Poisson process) whatever
// happened to earlier ones, and each latency counts from the request's due time, so a
// slow server can neither throttle the load nor hide its latency (no coordinated
// omission). Connections are kept alive and opened as needed, up to a cap beyond which
// requests wait for one (and that wait counts). Standard library only.
//
//	openloop -spec spec.json > report.json      (or the spec on stdin)
//
// The spec and report are JSON; see Spec and Report. bench/openloop.py builds and runs it.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// Template is one kind of request; each request picks a template at random by weight.
type Template struct {
	Name     string            `json:"name"`
	Method   string            `json:"method,omitempty"` // POST when empty
	Path     string            `json:"path"`
	BodyFile string            `json:"body_file,omitempty"` // relative to the spec file
	Headers  map[string]string `json:"headers,omitempty"`
	Weight   float64           `json:"weight"`
}

// Spec is what to run. A run ends when DurationS has passed or MaxRequests were due
// (0: no count bound), then waits for the answers, each bounded by TimeoutMs from its
// due time.
type Spec struct {
	Target         string     `json:"target"` // host:port
	Rate           float64    `json:"rate"`   // mean arrivals per second
	DurationS      float64    `json:"duration_s"`
	MaxRequests    int        `json:"max_requests"`
	TimeoutMs      float64    `json:"timeout_ms"`
	MaxConnections int        `json:"max_connections"`
	SLOMs          float64    `json:"slo_ms"`
	Seed           uint64     `json:"seed"`
	Arrivals       Arrivals   `json:"arrivals"`
	Templates      []Template `json:"templates"`
}

// Report is the result: totals, one group per template, one per X-Served-By value,
// and counts per X-Model-Version value.
type Report struct {
	Spec         Spec             `json:"spec"`
	Sent         int              `json:"sent"`
	WindowS      float64          `json:"window_s"`  // first to last due time
	ElapsedS     float64          `json:"elapsed_s"` // start to the last answer
	OfferedRPS   float64          `json:"offered_rps"`
	Total        Group            `json:"total"`
	Templates    map[string]Group `json:"templates"`
	ServedBy     map[string]Group `json:"served_by"`
	ModelVersion map[string]int   `json:"model_version"`
	// Connections opened over the run, and open at once at most.
	ConnectionsOpened int                `json:"connections_opened"`
	ConnectionsPeak   int                `json:"connections_peak"`
	ClientCPUS        float64            `json:"client_cpu_s"`
	ClientLagMs       map[string]float64 `json:"client_lag_ms"` // due time to start of send
}

func main() {
	specPath := flag.String("spec", "-", "spec JSON file, - for stdin")
	flag.Parse()
	spec, dir, err := readSpec(*specPath)
	if err == nil {
		var report Report
		if report, err = run(spec, dir); err == nil {
			encoder := json.NewEncoder(os.Stdout)
			encoder.SetIndent("", " ")
			err = encoder.Encode(report)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openloop:", err)
		os.Exit(2)
	}
}

func readSpec(path string) (Spec, string, error) {
	var spec Spec
	var data []byte
	var err error
	dir := "."
	if path == "-" {
		data, err = os.ReadFile("/dev/stdin")
	} else {
		data, err = os.ReadFile(path)
		dir = filepath.Dir(path)
	}
	if err != nil {
		return spec, dir, err
	}
	if err = json.Unmarshal(data, &spec); err != nil {
		return spec, dir, fmt.Errorf("spec: %w", err)
	}
	switch {
	case spec.Target == "" || spec.Rate <= 0 || spec.DurationS <= 0:
		err = errors.New("spec needs target, rate > 0 and duration_s > 0")
	case spec.TimeoutMs <= 0 || spec.MaxConnections <= 0 || spec.SLOMs <= 0:
		err = errors.New("spec needs timeout_ms, max_connections and slo_ms > 0")
	case len(spec.Templates) == 0:
		err = errors.New("spec needs at least one template")
	}
	return spec, dir, err
}

// load renders each template's request and the cumulative weights to pick one by.
func load(spec Spec, dir string) ([][]byte, []float64, error) {
	requests := make([][]byte, len(spec.Templates))
	cumulative := make([]float64, len(spec.Templates))
	total := 0.0
	for i, t := range spec.Templates {
		var body []byte
		if t.BodyFile != "" {
			path := t.BodyFile
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			var err error
			if body, err = os.ReadFile(path); err != nil {
				return nil, nil, err
			}
		}
		if t.Weight < 0 {
			return nil, nil, fmt.Errorf("template %q: negative weight", t.Name)
		}
		requests[i] = buildRequest(t, spec.Target, body)
		total += t.Weight
		cumulative[i] = total
	}
	if total <= 0 {
		return nil, nil, errors.New("template weights sum to 0")
	}
	for i := range cumulative {
		cumulative[i] /= total
	}
	return requests, cumulative, nil
}

func run(spec Spec, dir string) (Report, error) {
	requests, cumulative, err := load(spec, dir)
	if err != nil {
		return Report{}, err
	}
	clock, err := newArrivalClock(spec.Arrivals, spec.Rate, spec.Seed)
	if err != nil {
		return Report{}, err
	}
	timeout := time.Duration(spec.TimeoutMs * float64(time.Millisecond))
	reactor, err := newReactor(spec.Target, requests, timeout, spec.MaxConnections)
	if err != nil {
		return Report{}, err
	}
	defer reactor.close()
	runtime.LockOSThread() // the loop sleeps in epoll_wait: keep it on one thread
	defer runtime.UnlockOSThread()

	end := time.Duration(spec.DurationS * float64(time.Second))
	sent, lastDue := 0, time.Duration(0)
	cpuBefore := cpuSeconds()
	start := time.Now()
	next := func() (job, bool) {
		if spec.MaxRequests > 0 && sent >= spec.MaxRequests {
			return job{}, false
		}
		offset := time.Duration(clock.next() * float64(time.Second))
		if offset > end {
			return job{}, false
		}
		template, _ := slices.BinarySearch(cumulative, clock.rng.Float64())
		sent++
		lastDue = offset
		return job{due: start.Add(offset), template: min(template, len(cumulative)-1)}, true
	}
	if err = reactor.run(next); err != nil {
		return Report{}, err
	}
	elapsed := time.Since(start)
	return summarise(spec, reactor, sent, lastDue, elapsed, cpuSeconds()-cpuBefore), nil
}

func summarise(spec Spec, reactor *reactor, sent int, lastDue, elapsed time.Duration,
	cpu float64) Report {
	window := max(lastDue, time.Millisecond)
	report := Report{
		Spec: spec, Sent: sent, WindowS: round(lastDue.Seconds(), 3),
		ElapsedS:          round(elapsed.Seconds(), 3),
		OfferedRPS:        round(float64(sent)/window.Seconds(), 1),
		ConnectionsOpened: reactor.opened, ConnectionsPeak: reactor.peak,
		ClientCPUS: round(cpu, 3), Templates: map[string]Group{},
		ServedBy: map[string]Group{}, ModelVersion: map[string]int{},
	}
	slo := time.Duration(spec.SLOMs * float64(time.Millisecond))
	var total groupBuilder
	templates := make([]groupBuilder, len(spec.Templates))
	servedBy := map[string]*groupBuilder{}
	lags := make([]time.Duration, 0, len(reactor.outcomes))
	for _, o := range reactor.outcomes {
		total.add(o, slo)
		templates[o.template].add(o, slo)
		if o.servedBy != "" {
			if servedBy[o.servedBy] == nil {
				servedBy[o.servedBy] = &groupBuilder{}
			}
			servedBy[o.servedBy].add(o, slo)
		}
		if o.modelVersion != "" {
			report.ModelVersion[o.modelVersion]++
		}
		lags = append(lags, o.lag)
	}
	report.Total = total.finish(elapsed, window)
	for i, t := range spec.Templates {
		report.Templates[t.Name] = templates[i].finish(elapsed, window)
	}
	for name, builder := range servedBy {
		report.ServedBy[name] = builder.finish(elapsed, window)
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		report.ClientLagMs = map[string]float64{
			"p50": *millis(percentile(lags, 0.5)), "p99": *millis(percentile(lags, 0.99)),
			"max": *millis(lags[len(lags)-1]),
		}
	}
	return report
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}
