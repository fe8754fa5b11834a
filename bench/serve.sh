#!/usr/bin/env bash
# `mallard serve` under load (issue 17), side by side in one run with
#   - one `mallard scan FILE` process per file (CLIENTS at a time), on the same files;
#   - ClamAV's own clamd (Debian's clamav-daemon) with a small signature database made here
#     (no download), MaxThreads as ours;
# each daemon fed by CLIENTS concurrent clients sending every PE file of ../shared/data/pe-benign
# by INSTREAM over its Unix socket, ROUNDS times. Prints throughput (files/s) and latency
# percentiles (ms, per INSTREAM from connect to reply). A benchmark, not a test: targets are
# p99 <= 20 ms and >= 5x the process-per-file throughput, on 2 cores.
#
#   bash bench/serve.sh          (env: BIN, CLIENTS=8, ROUNDS=3, THREADS=2, FILES=dir,
#                                 SOAK_SECONDS=600 SOAK_MAX=2000000 for the memory soak, 0: none)
#
# The soak: CLIENTS clients send mixed commands (PING, VERSION, INSTREAM and JSON INSTREAM of
# the PE files, SCAN inside the ScanRoot, sessions, unknown commands, oversized chunks) over
# loopback TCP and the Unix socket for SOAK_SECONDS or SOAK_MAX commands, whichever first,
# sampling the daemon's resident memory every 2 s; target: the median of the last minute
# within 10% (either way) of the median of the first minute after a warm-up minute.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
CLIENTS=${CLIENTS:-8}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
FILES=${FILES:-$(cd .. && pwd)/shared/data/pe-benign}
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: cargo build --release -p mallard-cli first" >&2; exit 2; }
[ -d "$FILES" ] || { echo "no $FILES" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# The PE files (MZ magic) only.
python3 - "$FILES" > "$work/files" <<'PY'
import os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    if os.path.isfile(p) and open(p, "rb").read(2) == b"MZ":
        print(p)
PY
n=$(wc -l < "$work/files")
echo "== $n PE files from $FILES; $CLIENTS clients, $ROUNDS rounds, $THREADS scanning threads; $(nproc) cores"

cat > "$work/drive.py" <<'PY'
# CLIENTS threads, each taking the next file and sending it by INSTREAM on a new connection.
import socket, struct, sys, threading, time
sock, clients, rounds, listing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
files = [open(p.strip(), "rb").read() for p in open(listing) if p.strip()]
jobs = [f for _ in range(rounds) for f in files]
lock = threading.Lock(); lat = []; bad = []; nxt = [0]
def one(data):
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    msg = bytearray(b"zINSTREAM\0")
    for i in range(0, len(data), 1 << 16):
        c = data[i:i + (1 << 16)]
        msg += struct.pack("!L", len(c)) + c
    msg += struct.pack("!L", 0)
    s.sendall(msg)
    out = b""
    while True:
        b = s.recv(4096)
        if not b: break
        out += b
        if out.endswith(b"\0"): break
    s.close()
    return time.perf_counter() - t, out
def worker():
    while True:
        with lock:
            i = nxt[0]; nxt[0] += 1
        if i >= len(jobs): return
        dt, out = one(jobs[i])
        with lock:
            lat.append(dt)
            if not out.startswith(b"stream: OK"): bad.append(out[:200])
t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(clients)]
[t.start() for t in ts]; [t.join() for t in ts]
wall = time.perf_counter() - t0
lat.sort()
q = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{len(lat)} streams in {wall:.2f} s: {len(lat)/wall:.1f} files/s; latency ms p50 {q(.5):.1f} p90 {q(.9):.1f} p99 {q(.99):.1f} max {1000*lat[-1]:.1f}; {len(bad)} not OK")
for b in bad[:3]: print("  not OK:", b)
PY

wait_sock() { for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; return 1; }

echo "== one mallard scan process per file, $CLIENTS at a time"
start=$(date +%s.%N)
xargs -a "$work/files" -P "$CLIENTS" -n 1 "$BIN" scan -q --threads 1 > "$work/scan.out" 2>/dev/null || true
end=$(date +%s.%N)
python3 -c "import sys; n=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'{n} files in {s:.2f} s: {n/s:.1f} files/s')" "$n" "$start" "$end"

echo "== mallard serve (MaxThreads $THREADS)"
printf 'LocalSocket %s\nMaxThreads %s\nMaxConnections 64\nStreamMaxLength 64M\n' "$work/mallard.sock" "$THREADS" > "$work/mallard.conf"
"$BIN" serve --config "$work/mallard.conf" 2> "$work/serve.log" &
pids+=($!)
wait_sock "$work/mallard.sock"
python3 "$work/drive.py" "$work/mallard.sock" "$CLIENTS" 1 "$work/files" > /dev/null   # warm-up
python3 "$work/drive.py" "$work/mallard.sock" "$CLIENTS" "$ROUNDS" "$work/files"
echo "   daemon RSS: $(grep VmRSS /proc/${pids[-1]}/status | awk '{print $2}') KiB"
serve_pid=${pids[-1]}

SOAK_SECONDS=${SOAK_SECONDS:-600}
if [ "$SOAK_SECONDS" -gt 0 ]; then
  echo "== soak: mixed commands for ${SOAK_SECONDS} s (at most ${SOAK_MAX:-2000000}), $CLIENTS clients"
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'ScanRoot %s\nTCPSocket %s\n' "$FILES" "$port" >> "$work/mallard.conf"
  "$BIN" serve --config "$work/mallard.conf" 2>> "$work/serve.log" &
  pids+=($!); serve_pid=$!
  wait_sock "$work/mallard.sock"
  python3 - "$work/mallard.sock" "$port" "$CLIENTS" "$SOAK_SECONDS" "${SOAK_MAX:-2000000}" "$work/files" "$serve_pid" <<'PY'
import random, socket, struct, sys, threading, time
sock, port, clients, secs, cap, listing, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
paths = [p.strip() for p in open(listing) if p.strip()]
files = [open(p, "rb").read() for p in paths[:40]]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def conn(unix):
    if unix:
        s = socket.socket(socket.AF_UNIX); s.connect(sock)
    else:
        s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30); return s
def talk(data, unix):
    s = conn(unix); s.sendall(data); out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    s.close(); return out
def stream(data):
    m = bytearray()
    for i in range(0, len(data), 1 << 16): m += struct.pack("!L", len(data[i:i + (1 << 16)])) + data[i:i + (1 << 16)]
    return bytes(m + struct.pack("!L", 0))
count = [0]; errors = []; lock = threading.Lock(); end = time.time() + secs
def worker(k):
    r = random.Random(k)
    while time.time() < end:
        with lock:
            if count[0] >= cap: return
            count[0] += 1
        unix = r.random() < 0.5; f = r.choice(files); c = r.randrange(8)
        try:
            if c == 0: ok = talk(b"nPING\n", unix) == b"PONG\n"
            elif c == 1: ok = talk(b"zVERSION\0", unix).startswith(b"mallard ")
            elif c == 2: ok = talk(b"zINSTREAM\0" + stream(f), unix).startswith(b"stream: ")
            elif c == 3: ok = talk(b"nJSON INSTREAM\n" + stream(f), unix).startswith(b"{")
            elif c == 4: ok = talk(("nSCAN " + r.choice(paths) + "\n").encode(), unix).endswith(b"\n")
            elif c == 5: ok = talk(b"nIDSESSION\nnPING\nnINSTREAM\n" + stream(f) + b"nVERSION\nnEND\n", unix).startswith(b"1: PONG\n2: stream: ")
            elif c == 6: ok = talk(b"nNOPE\n", unix) == b"UNKNOWN COMMAND\n"
            else: ok = talk(b"nINSTREAM\n" + struct.pack("!L", 0xFFFFFFF0), unix) == b"INSTREAM size limit exceeded. ERROR\n"
            if not ok: errors.append(c)
        except Exception as e:
            errors.append(repr(e))
samples = []
def sampler():
    t0 = time.time()
    while time.time() < end and count[0] < cap:
        # Every 2 s: with streams held in memory, RSS moves by tens of MiB within seconds
        # (8 clients, files up to 4.8 MB), and 6 samples a minute could not tell a minute's
        # level from the streams that happened to be in flight.
        samples.append((time.time() - t0, rss())); time.sleep(2)
    samples.append((time.time() - t0, rss()))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)] + [threading.Thread(target=sampler)]
[t.start() for t in ts]; [t.join() for t in ts]
# One sample swings with the streams in flight (8 clients, files up to megabytes), so the
# first minute after the warm-up is compared with the last minute, median against median,
# both ways: flat means neither grown nor shrunk by more than 10%.
warm = [s for s in samples if s[0] >= 60] or samples
med = lambda xs: sorted(xs)[len(xs) // 2]
a = med([v for t, v in warm if t < warm[0][0] + 60])
b = med([v for t, v in samples if t >= samples[-1][0] - 60])
lo, hi, peak = min(v for _, v in warm), max(v for _, v in warm), max(v for _, v in samples)
print(f"{count[0]} commands, {len(errors)} unexpected replies; RSS KiB, median of the first minute after warm-up {a}, of the last minute {b}: {b/a:.3f} ({'flat' if abs(b / a - 1) <= 0.10 else 'NOT flat'} within 10%); after warm-up {lo}-{hi}, peak {peak}")
print("RSS MiB every 10 s:", " ".join(f"{v / 1024:.0f}" for _, v in samples[::5]))
for e in errors[:5]: print("  unexpected:", e)
PY
fi

if command -v clamd >/dev/null; then
  echo "== ClamAV clamd $(clamd --version | head -1) (MaxThreads $THREADS, a 3-signature database made here)"
  mkdir -p "$work/db"
  # Two body signatures and one hash: enough for clamd to load and scan every byte.
  printf 'Bench.Marker.A:0:*:4d414c4c4152442d42454e43482d41\nBench.Marker.B:1:*:deadbeefcafebabe0011223344556677\n' > "$work/db/bench.ndb"
  printf '%s:%s:Bench.Hash.C\n' "$(printf 'bench-c' | md5sum | cut -d' ' -f1)" 7 > "$work/db/bench.hdb"
  cat > "$work/clamd.conf" <<CONF
Foreground yes
LocalSocket $work/clamd.sock
DatabaseDirectory $work/db
MaxThreads $THREADS
StreamMaxLength 64M
LogFile $work/clamd.log
PidFile $work/clamd.pid
User $(id -un)
CONF
  clamd -c "$work/clamd.conf" > "$work/clamd.out" 2>&1 &
  pids+=($!)
  wait_sock "$work/clamd.sock"
  python3 "$work/drive.py" "$work/clamd.sock" "$CLIENTS" 1 "$work/files" > /dev/null
  python3 "$work/drive.py" "$work/clamd.sock" "$CLIENTS" "$ROUNDS" "$work/files"
  echo "   daemon RSS: $(grep VmRSS /proc/${pids[-1]}/status | awk '{print $2}') KiB"
else
  echo "skipped: clamd side by side (no clamd: apt-get install clamav-daemon)"
fi
