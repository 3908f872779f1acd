package main

import (
	"fmt"
	"math/rand/v2"
)

// Arrivals describes the arrival process. "poisson": exponential gaps at the mean rate.
// "mmpp": a two-state Markov-modulated Poisson process, the usual model of bursty
// traffic: the source alternates between a burst state and a calm state, each held for
// an exponentially distributed time, and sends Poisson arrivals at the state's rate.
// BurstFactor is the burst rate over the mean rate, BurstFraction the long-run share of
// time spent bursting, BurstMeanMs the mean length of one burst. The calm rate follows
// from keeping the mean: mean*(1 - fraction*factor)/(1 - fraction); fraction*factor = 1
// is the on/off source (silent between bursts).
type Arrivals struct {
	Process       string  `json:"process"`
	BurstFactor   float64 `json:"burst_factor,omitempty"`
	BurstFraction float64 `json:"burst_fraction,omitempty"`
	BurstMeanMs   float64 `json:"burst_mean_ms,omitempty"`
}

// arrivalClock yields arrival times in seconds from the start, in increasing order.
type arrivalClock struct {
	rng        *rand.Rand
	now        float64
	rates      [2]float64 // per state: 0 calm, 1 burst (equal for Poisson)
	meanStay   [2]float64 // mean seconds per visit to each state (0: never switch)
	state      int
	nextSwitch float64
}

func newArrivalClock(a Arrivals, rate float64, seed uint64) (*arrivalClock, error) {
	c := &arrivalClock{rng: rand.New(rand.NewPCG(seed, 0x6d6c70697065))}
	switch a.Process {
	case "", "poisson":
		c.rates = [2]float64{rate, rate}
		return c, nil
	case "mmpp":
		f, b := a.BurstFraction, a.BurstFactor
		if f <= 0 || f >= 1 || b < 1 || f*b > 1+1e-9 || a.BurstMeanMs <= 0 {
			return nil, fmt.Errorf("mmpp needs 0 < burst_fraction < 1, burst_factor >= 1, "+
				"burst_fraction*burst_factor <= 1 and burst_mean_ms > 0, got %+v", a)
		}
		burst := a.BurstMeanMs / 1e3
		c.rates = [2]float64{max(0, rate*(1-f*b)/(1-f)), rate * b}
		c.meanStay = [2]float64{burst * (1 - f) / f, burst}
		// Start in the stationary distribution so short runs are not biased to one state.
		if c.rng.Float64() < f {
			c.state = 1
		}
		c.nextSwitch = c.rng.ExpFloat64() * c.meanStay[c.state]
		return c, nil
	}
	return nil, fmt.Errorf("unknown arrival process %q (poisson or mmpp)", a.Process)
}

// next returns the time of the next arrival. Both processes are memoryless, so a gap
// that crosses a state switch is redrawn from the switch at the new state's rate.
func (c *arrivalClock) next() float64 {
	for {
		rate := c.rates[c.state]
		gap := 1e300
		if rate > 0 {
			gap = c.rng.ExpFloat64() / rate
		}
		if c.meanStay[c.state] == 0 || c.now+gap <= c.nextSwitch {
			c.now += gap
			return c.now
		}
		c.now = c.nextSwitch
		c.state = 1 - c.state
		c.nextSwitch = c.now + c.rng.ExpFloat64()*c.meanStay[c.state]
	}
}
