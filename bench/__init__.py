"""klambda's benchmarks: `make bench` (`python -m bench.run`) rewrites bench/RESULTS.md.

Every figure is a pair or a ratio measured in the same run, beside a floor that this
machine allows (a bare grpc.aio echo, `python -I -S -c pass`, a direct call of the
handler) or a peer (AWS's Runtime Interface Emulator with `awslambdaric`), because these
machines are shared and noisy: absolute numbers move from run to run, ratios much less.
"""
