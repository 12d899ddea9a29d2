# layering.sh - the module folders form layers with no include cycle (README "What is here"):
#   util < model < {expand, data, io} < parallel < train < cli < main.c
# A module may include headers of its own layer's peers and of lower layers only, and the graph of
# module includes has no cycle (so expand, data and io may use one another in one direction only).
# Which module a header belongs to is derived, not listed: the src/ folder that defines most of
# the functions it declares (a header of types and macros only belongs to the lowest module that
# includes it). Fails naming every offending include (file, header, both modules) and every cycle;
# on the tree before the engine branch it reported train <-> parallel and train <-> io.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
python3 - "$LP_SOURCE_DIR" <<'PY' || fail "layering violated (above)"
import collections, glob, os, re, sys
root = sys.argv[1]
layer = {"util": 0, "model": 1, "expand": 2, "data": 2, "io": 2, "parallel": 3, "train": 4, "cli": 5, "main": 6}
inc_re = re.compile(r'^\s*#\s*include\s+"llamapro/([\w.]+)"', re.M)
sources = {}  # path -> module
for p in glob.glob(os.path.join(root, "src", "*", "*.c")) + glob.glob(os.path.join(root, "src", "*", "*.cc")):
    sources[p] = os.path.basename(os.path.dirname(p))
sources[os.path.join(root, "src", "main.c")] = "main"
unknown = [m for m in set(sources.values()) if m not in layer]
if unknown:
    print("layering: src/%s is not in the layer order of tests/unit/layering.sh and README" % unknown); sys.exit(1)
text = {p: open(p, encoding="utf-8", errors="replace").read() for p in sources}
headers = sorted(glob.glob(os.path.join(root, "include", "llamapro", "*.h")))
# a header's module: where the functions it declares are defined
defined = collections.defaultdict(collections.Counter)   # function -> Counter(module)
def_re = re.compile(r'^(?:extern "C"\s+)?[A-Za-z_][\w \t\*]*?\b(lp_\w+)\s*\([^;{]*\)\s*\{', re.M)
uncomment = lambda t: re.sub(r'//[^\n]*', '', re.sub(r'/\*.*?\*/', '', t, flags=re.S))
for p, t in text.items():
    for f in def_re.findall(t):
        defined[f][sources[p]] += 1
owner = {}
for h in headers:
    ht = uncomment(open(h).read())
    decl = re.findall(r'\b(lp_\w+)\s*\(', re.sub(r'static inline[^{]*\{[^}]*\}', '', ht))
    votes = collections.Counter()
    for f in decl:
        votes.update(defined.get(f, {}))
    name = os.path.basename(h)
    if votes:
        owner[name] = votes.most_common(1)[0][0]
    else:  # types and macros only: the lowest module whose sources include it
        users = [sources[p] for p, t in text.items() if name in inc_re.findall(t)]
        if not users:
            print("layering: %s declares nothing defined in src/ and nothing includes it" % name); sys.exit(1)
        owner[name] = min(users, key=lambda m: layer[m])
bad = 0
edges = collections.defaultdict(set)   # module -> modules it includes
def check(path, mod, t):
    global bad
    for h in inc_re.findall(t):
        if h not in owner:
            print("layering: %s includes llamapro/%s, which does not exist" % (path, h)); bad = 1; continue
        o = owner[h]
        if o == mod: continue
        edges[mod].add(o)
        if layer[o] > layer[mod]:
            print("layering: %s (%s) includes %s of %s, a higher layer" % (os.path.relpath(path, root), mod, h, o)); bad = 1
for p, t in text.items():
    check(p, sources[p], t)
for h in headers:
    check(h, owner[os.path.basename(h)], open(h).read())
# cycles among modules (peers of one layer included)
state = {}
def dfs(m, stack):
    global bad
    state[m] = 1
    for n in sorted(edges[m]):
        if state.get(n) == 1:
            print("layering: include cycle: %s" % " -> ".join(stack[stack.index(n):] + [n])); bad = 1
        elif n not in state:
            dfs(n, stack + [n])
    state[m] = 2
for m in sorted(layer):
    if m not in state: dfs(m, [m])
print("modules: " + "; ".join("%s -> %s" % (m, ", ".join(sorted(edges[m]))) for m in sorted(edges, key=lambda m: layer[m])))
print("headers: " + ", ".join("%s:%s" % (h, owner[h]) for h in sorted(owner)))
sys.exit(bad)
PY
echo "layering: passed"
