module mlpipe/bench/openloop

go 1.26
