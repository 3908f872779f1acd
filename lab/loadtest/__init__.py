"""HTTP load clients for a running server: a Python open-loop generator and a driver for
`wrk`. The benchmarks (bench/) and the tests both load servers with them, and neither
imports the other, so they live in the lab that both import."""
