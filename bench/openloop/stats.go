package main

import (
	"math"
	"slices"
	"time"
)

// outcome is what one request came to.
type outcome struct {
	template     int
	status       string // the HTTP status code, or timeout / connect_error / transport_error
	latency      time.Duration
	lag          time.Duration // from the due time until a connection started on it
	servedBy     string
	modelVersion string
}

// Group summarises a set of requests. Latency percentiles are over the 200s only,
// counted from each request's due time; Good counts the 200s within the SLO.
type Group struct {
	Requests      int            `json:"requests"`
	Status        map[string]int `json:"status"`
	OK            int            `json:"ok"`
	Good          int            `json:"good"`
	ThroughputRPS float64        `json:"throughput_rps"`
	GoodputRPS    float64        `json:"goodput_rps"`
	// Latency figures are null when no request got a 200.
	P50Ms  *float64 `json:"p50_ms"`
	P99Ms  *float64 `json:"p99_ms"`
	P999Ms *float64 `json:"p999_ms"`
	MeanMs *float64 `json:"mean_ms"`
	MaxMs  *float64 `json:"max_ms"`
}

type groupBuilder struct {
	group     Group
	latencies []time.Duration
}

func (b *groupBuilder) add(o outcome, slo time.Duration) {
	if b.group.Status == nil {
		b.group.Status = map[string]int{}
	}
	b.group.Requests++
	b.group.Status[o.status]++
	if o.status == "200" {
		b.group.OK++
		b.latencies = append(b.latencies, o.latency)
		if o.latency <= slo {
			b.group.Good++
		}
	}
}

// finish computes the figures: throughput over the whole run (until the last answer),
// goodput over the window in which requests were due, so that a server that answers
// everything within the SLO shows a goodput equal to the offered rate.
func (b *groupBuilder) finish(elapsed, window time.Duration) Group {
	g := b.group
	g.ThroughputRPS = round(float64(g.OK)/elapsed.Seconds(), 1)
	g.GoodputRPS = round(float64(g.Good)/window.Seconds(), 1)
	if len(b.latencies) == 0 {
		return g
	}
	slices.Sort(b.latencies)
	g.P50Ms = millis(percentile(b.latencies, 0.50))
	g.P99Ms = millis(percentile(b.latencies, 0.99))
	g.P999Ms = millis(percentile(b.latencies, 0.999))
	g.MaxMs = millis(b.latencies[len(b.latencies)-1])
	var sum time.Duration
	for _, latency := range b.latencies {
		sum += latency
	}
	g.MeanMs = millis(sum / time.Duration(len(b.latencies)))
	return g
}

// percentile by nearest rank over sorted values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func millis(d time.Duration) *float64 {
	ms := round(float64(d)/1e6, 3)
	return &ms
}

func round(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}
