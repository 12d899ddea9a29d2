# plan.sh - `llamapro plan` and `llamapro bench --network`:
#   - the memory plan predicts for a layout is what `train` allocates for it: the tiny model expanded
#     (6 layers, 2 trainable) trained with pp = 2 and with pp = 1 x dp = 2 on 2 ranks; per stage,
#     weights, gradients and optimizer state equal to the byte, activations within 3%, and the
#     peak resident memory within 10% of the training's VmHWM;
#   - bench --network on 2 ranks writes ping-pong and all-reduce times and an "intra" link that
#     plan --net reads; on 1 rank it is a one-line usage error;
#   - plan for Llama-2-7B expanded to 40 layers over 1 to 1024 nodes runs in seconds and ranks
#     layouts, marking those that do not fit.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
lp_tiny_ini "$T/run.ini" 64 "[data]" "val =" "[batch]" "microbatches = 4" "steps = 2" "[run]" "dir = $T/run" "eval_every = 0"
lp_tiny_setup "$T/run.ini" 40 0.2

# train and plan each layout of 2 ranks; same global batch (8 sequences)
for lay in "2 4" "1 2"; do
  set -- $lay
  pp=$1 M=$2
  rm -rf "$T/run"
  "$MPIEXEC" -n 2 --bind-to none "$LLAMAPRO" train --config "$T/run.ini" parallel.pp=$pp batch.microbatches=$M \
    > "$T/train.log" 2>&1 || fail "train pp=$pp: $(tail -5 "$T/train.log")"
  run "$LLAMAPRO" plan --config "$T/run.ini" parallel.pp=$pp --ranks-per-node 2 --pp $pp --global-batch 8 \
    --schedules 1f1b --gflops 10 --json "$T/plan.json" > "$T/plan.txt"
  /usr/bin/python3 - "$T/run/metrics.jsonl" "$T/plan.json" "$pp" <<'PY' || fail "plan memory differs from train's (pp=$pp): $(grep -E 'memory stage' "$T/train.log")"
import json, sys
mem = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "memory_stage" in r: mem[r["memory_stage"]] = r          # the last report (after the steps)
plans = [json.loads(l) for l in open(sys.argv[2])]
pp = int(sys.argv[3])
[p] = [p for p in plans if p["pp"] == pp]
assert len(p["stages"]) == pp == len(mem), (p, mem)
for s, st in enumerate(p["stages"]):
    m = mem[s]
    for k in ("weights_bytes", "grads_bytes", "optim_bytes"):
        assert st[k] == m[k], (s, k, st[k], m[k])
    assert abs(st["acts_bytes"] - m["acts_bytes"]) <= 0.03 * m["acts_bytes"], (s, st["acts_bytes"], m["acts_bytes"])
    assert abs(st["mem_bytes"] - m["vmhwm_bytes"]) <= 0.10 * m["vmhwm_bytes"], (s, st["mem_bytes"], m["vmhwm_bytes"])
    print(f"pp={pp} stage {s}: plan {st['mem_bytes']/1e6:.1f} MB, train peak {m['vmhwm_bytes']/1e6:.1f} MB; "
          f"activations {st['acts_bytes']} vs {m['acts_bytes']}")
PY
done

# bench --network on 2 ranks -> plan --net
"$MPIEXEC" -n 2 --bind-to none "$LLAMAPRO" bench --network --max-bytes 262144 --reps 5 --json "$T/net.json" > "$T/net.txt" 2>&1 ||
  fail "bench --network: $(tail -5 "$T/net.txt")"
grep -q "inside a node (1 pairs): latency" "$T/net.txt" || fail "no link summary: $(cat "$T/net.txt")"
/usr/bin/python3 - "$T/net.json" <<'PY' || fail "bench --network JSON: $(cat "$T/net.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ranks"] == 2 and j["sizes"] == [8, 64, 512, 4096, 32768, 262144], j["sizes"]
[p] = j["pingpong"]
assert (p["a"], p["b"], p["same_node"]) == (0, 1, True)
assert all(t > 0 for t in p["seconds"]) and len(j["allreduce"]["seconds"]) == 6
# the summary is the table's: latency = the 8-byte time; no bounds on times (a shared machine can
# deschedule a polling rank for milliseconds)
assert j["intra"]["latency_s"] == p["seconds"][0] and j["intra"]["bandwidth_Bps"] > 0 and j["inter"] is None
PY
run "$LLAMAPRO" plan --config "$T/run.ini" --net "$T/net.json" --gflops 10 --nodes 1,2 > "$T/plan2.txt"
grep -q "network (measured)" "$T/plan2.txt" || fail "plan --net not used: $(head -4 "$T/plan2.txt")"
expect_fail 1 "bench --network: runs on 1 MPI rank; expected at least 2" "$LLAMAPRO" bench --network
expect_fail 1 "do not split into 3 equal groups" "$LLAMAPRO" plan --config "$LP_SOURCE_DIR/inputs/configs/llama2-7b-pro.ini" --expand 3 --gflops 1
expect_fail 1 "--nodes: expected a comma-separated list" "$LLAMAPRO" plan --config "$T/run.ini" --nodes 1,x

# the 7B projection: 40 layers, seq 4096, 1 to 1024 nodes, in seconds
t0=$(date +%s%N)
run "$LLAMAPRO" plan --config "$LP_SOURCE_DIR/inputs/configs/llama2-7b-pro.ini" --expand 8 --gflops 5000 --ranks-per-node 2 \
  --node-mem-gb 768 --nodes 1,2,4,8,16,32,64,128,256,512,1024 --latency-us 2 --bandwidth-gbs 20 > "$T/plan7b.txt"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 10000 ] || fail "plan for 7B took $ms ms"
grep -q "^plan: 40 layers (1619066880 trainable parameters" "$T/plan7b.txt" || fail "7B shape: $(head -1 "$T/plan7b.txt")"
grep -q "does not fit" "$T/plan7b.txt" || fail "no layout marked as not fitting"
[ "$(sed -n '/^best layout/,$p' "$T/plan7b.txt" | grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ ')" -ge 5 ] ||
  fail "too few node counts with a fitting layout: $(sed -n '/^best layout/,$p' "$T/plan7b.txt")"
echo "plan for Llama-2-7B-Pro over 11 node counts in $ms ms"
echo "plan: passed"
