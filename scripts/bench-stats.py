#!/usr/bin/env python3
"""What KMEM_STATS costs: the round trip of one snapshot from the preload's
stats socket, and the wall time of the mt.c workload without the server,
with it idle, and with a reader taking snapshots in a tight loop.

Usage (after `cargo test -p kmem-cli --test top_live` and
`cargo test -p kmem-preload-tests stats`, which build the programs):
  scripts/bench-stats.py target/release/libkmem_preload.so \
      target/kmem-cli-tests/stats_target target/preload-tests/mt
"""
import socket, subprocess, sys, time, statistics, os, threading
lib, prog, mt = sys.argv[1], sys.argv[2], sys.argv[3]
sock = "/tmp/kmem-bench.sock"
env = dict(os.environ, LD_PRELOAD=lib, KMEM_STATS=sock)
p = subprocess.Popen([prog], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
p.stdout.readline()
def snap():
    s = socket.socket(socket.AF_UNIX); s.connect(sock); d = b''
    while True:
        c = s.recv(65536)
        if not c: break
        d += c
    s.close(); return d
ts = []
for i in range(2000):
    t = time.perf_counter_ns(); d = snap(); ts.append(time.perf_counter_ns() - t)
print("snapshot bytes", len(d), "round trip median us", statistics.median(ts)/1000, "p99 us", sorted(ts)[int(len(ts)*.99)]/1000)
p.stdin.close(); p.wait()
def runmt(stats, reader):
    e = dict(os.environ, LD_PRELOAD=lib)
    if stats: e["KMEM_STATS"] = sock
    stop = [False]; n=[0]
    def rd():
        while not stop[0]:
            try: snap(); n[0]+=1
            except OSError: time.sleep(0.001)
    th = threading.Thread(target=rd)
    if reader: th.start()
    t = time.perf_counter(); subprocess.run([mt], env=e, stdout=subprocess.DEVNULL, check=True); el = time.perf_counter()-t
    stop[0]=True
    if reader: th.join()
    return el, n[0]
for name, st, rd in [("no KMEM_STATS", False, False), ("KMEM_STATS, no reader", True, False), ("KMEM_STATS, reader in a loop", True, True)]:
    r = [runmt(st, rd) for _ in range(5)]
    print(f"mt.c {name}: median {statistics.median(x[0] for x in r)*1000:.0f} ms (snapshots read: {[x[1] for x in r]})")
