#!/usr/bin/python3
"""Soak: random valid and invalid pipelines and command lines for a bounded
time, each checked for what the reliability promise says (issue 16): every
call ends, ends with success or one clear message, leaves no temporary
beside its target, never changes an input; and repeated in-process runs
(the C++ engine through the Python package) keep the process's RSS flat.

Not part of the suite: a long run that hunts for what the corpus, the
fuzzers and the signal tests did not think of.

usage: /usr/bin/python3 tools/soak.py BUILD_DIR [--minutes 30] [--calls N]
                                       [--seed S] [--work DIR] [--timeout S]

BUILD_DIR is a configured and built tree (its tools/tessera, its
tests/make_acquisition and, if built, its Python package). The inputs:
the suite's corpus of hostile files (tests/corpus), pipelines generated
from `tessera ops --json` (valid values from each spec's range and
choices, and values just outside them, of the wrong type, unknown keys),
the corpus pipelines mutated with the fuzz dictionary's tokens, and small
generated scans and acquisitions for stitch and mosaic. Prints one line
per failure and, at the end, the number of calls by outcome, the failures,
and the RSS curve of the in-process runs. Exit 0 when nothing failed.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent
CORPUS = SRC / "tests" / "corpus"
DICT = SRC / "tests" / "fuzz" / "pipeline.dict"

# What a failing call's last stderr line must look like: the CLI's one
# message (main.cpp), or CLI11's usage error.
MESSAGE_PREFIXES = ("tessera: ", "Run with --help", "The following argument", "Could not convert",
                    "The value ", "--", "A subcommand", "error:")
# What must never appear: a crash, an escaped exception, a sanitizer report.
FATAL_MARKS = ("terminate called", "Segmentation fault", "Aborted", "AddressSanitizer", "UndefinedBehaviorSanitizer",
               "runtime error:", "std::bad_alloc", "double free", "core dumped", "what():")


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(folder):
    """Every input file's digest: what no call may change."""
    return {str(p): sha(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


class Soak:
    def __init__(self, args):
        self.args = args
        self.build = Path(args.build).resolve()
        self.tessera = self.build / "tools" / "tessera"
        self.rng = random.Random(args.seed)
        self.work = Path(args.work or tempfile.mkdtemp(prefix="tessera-soak-"))
        self.inputs = self.work / "inputs"
        self.out = self.work / "out"
        self.outcomes = {}
        self.failures = []
        self.calls = 0
        self.specs = json.loads(self.run_cli(["ops", "--json"], check=True).stdout)["ops"]
        self.tokens = [l.strip()[1:-1].encode().decode("unicode_escape") for l in DICT.read_text().splitlines()
                       if l.startswith('"')]

    # ---- set-up -----------------------------------------------------------
    def run_cli(self, argv, check=False, timeout=None):
        r = subprocess.run([str(self.tessera)] + argv, capture_output=True, text=True, timeout=timeout or 600)
        if check and r.returncode != 0:
            sys.exit(f"soak: tessera {' '.join(argv)} failed: {r.stderr}")
        return r

    def prepare(self):
        self.inputs.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        # hostile files, and the corpus pipelines as seeds for mutation
        shutil.copytree(CORPUS / "images", self.inputs / "bad", dirs_exist_ok=True)
        self.seed_pipelines = [p.read_text(errors="replace") for p in sorted((CORPUS / "pipelines").glob("*.json"))]
        # good images of every kind the loaders take, written by vips
        good = self.inputs / "good"
        good.mkdir(exist_ok=True)
        for name, cmd in [("a.jpg", ["vips", "xyz", "{o}[Q=85]", "300", "200"]),
                          ("b.png", ["vips", "black", "{o}", "128", "96", "--bands", "3"]),
                          ("c.tif", ["vips", "xyz", "{o}[tile,compression=deflate]", "257", "130"]),
                          ("d.tif", ["vips", "gaussnoise", "{o}", "200", "150"])]:
            subprocess.run([c.replace("{o}", str(good / name)) for c in cmd], check=True, capture_output=True)
        self.good = sorted(str(p) for p in good.iterdir())
        self.bad = sorted(str(p) for p in (self.inputs / "bad").iterdir())
        # scans for stitch, an acquisition for mosaic
        gen = self.build / "tests" / "make_acquisition"
        self.acq = None
        if gen.exists():
            self.acq = self.inputs / "acq"
            subprocess.run([str(gen), str(self.acq), "cols=4", "rows=3", "tile=256x192", "overlap=12", "bits=16"],
                           check=True, capture_output=True)
        self.scan_csv = self.inputs / "scans.csv"
        rows = ["file,x,y"] + [f"good/{Path(g).name},{(i % 3) * 150},{(i // 3) * 100}" for i, g in
                               enumerate(self.good)]
        self.scan_csv.write_text("\n".join(rows) + "\n")
        self.digest = snapshot(self.inputs)

    # ---- random values from the specs -------------------------------------
    def value(self, p, valid):
        t, r = p["type"], self.rng
        lo, hi = p.get("min"), p.get("max")
        if not valid and r.random() < 0.4:
            # the wrong type, or just outside the range
            if lo is not None and r.random() < 0.5:
                return lo - 1 if t == "integer" else lo - 0.5
            if hi is not None and r.random() < 0.5:
                return hi + 1
            return r.choice(["x", -1, 1e300, [], {}, None, True, 2**63])
        if p.get("choices"):
            return r.choice(p["choices"]) if valid or r.random() < 0.7 else "no-such-choice"
        if p.get("name") == "path" or "path" in p.get("name", ""):
            return r.choice(self.good if valid else self.good + self.bad + ["/dev/zero", "/no/such.tif"])
        if t == "boolean":
            return r.random() < 0.5
        if t == "integer":
            a = int(lo) if lo is not None else -4
            b = int(min(hi, a + 600)) if hi is not None else a + 600
            return r.randint(a, max(a, b))
        if t == "number":
            a = lo if lo is not None else -4.0
            b = min(hi, a + 8) if hi is not None else a + 8
            return round(r.uniform(a, b), 3)
        if t == "string":
            return r.choice(["u8", "u16", "f32", "x", ""])
        if t.startswith("array"):
            n = r.randint(1, 4)
            if "point" in t or "coord" in t or "pair" in t:
                return [[r.randint(0, 300), r.randint(0, 200)] for _ in range(n)]
            return [r.randint(0, 5) for _ in range(n)] if "integer" in t else [round(r.uniform(0, 3), 2) for _ in
                                                                               range(n)]
        return None

    def node(self, spec, inputs, nid, valid):
        n = {"id": nid, "op": spec["name"]}
        if inputs:
            n["inputs"] = inputs
        for p in spec["params"]:
            if p.get("required") or self.rng.random() < (0.1 if valid else 0.3):
                n[p["name"]] = self.value(p, valid)
        if not valid and self.rng.random() < 0.15:
            n["no_such_key"] = 1
        return n

    def random_pipeline(self, valid):
        """A chain: a source, up to three ops, a save; `valid` keeps every
        value inside its spec (the ops may still refuse combinations)."""
        by = {s["name"]: s for s in self.specs}
        sources = [s for s in self.specs if s["inputs"]["min"] == 0 and not s["sink"] and
                   (not valid or s["name"] != "zarr_load")]  # (no Zarr store among the inputs)
        middles = [s for s in self.specs if s["inputs"]["min"] >= 1 and not s["sink"]]
        r = self.rng
        src = r.choice(sources)
        nodes = [self.node(src, None, "n0", valid)]
        if src["name"] == "black":  # keep canvases small: the soak is about errors, not size
            nodes[0].update(width=r.randint(1, 700), height=r.randint(1, 500))
        if src["name"] in ("load", "gdal_load") and valid:
            nodes[0]["path"] = r.choice(self.good)
        for i in range(r.randint(0, 3)):
            op = r.choice(middles)
            k = op["inputs"]["min"]
            ins = [nodes[-1]["id"]] * max(1, k)
            nodes.append(self.node(op, ins, f"n{i + 1}", valid))
        ext = r.choice([".tif", ".tif", ".jpg", ".png", ".ome.tif", ".zarr", ".dzi", ".v", ".webp", ".xyz"])
        target = str(self.out / f"o{self.calls}{ext}")
        read = [n["path"] for n in nodes if isinstance(n.get("path"), str) and n["path"] in self.good]
        if read and not valid and r.random() < 0.2:
            target = r.choice(read)  # one of its inputs as the output: refused, the input intact
        nodes.append({"id": "save", "op": "save", "inputs": [nodes[-1]["id"]], "path": target})
        if r.random() < 0.3:
            nodes[-1]["compression"] = r.choice(["none", "deflate", "jpeg", "zstd", "lzw", "bogus"])
        doc = {"version": 1, "nodes": nodes}
        if r.random() < 0.3:
            doc["execution"] = {"tile": r.choice([16, 64, 256] + ([] if valid else [0, -1])),
                                "threads": r.choice([1, 2, 0])}
        return doc

    def mutated_pipeline(self):
        """A corpus or generated pipeline with bytes replaced by dictionary tokens."""
        r = self.rng
        text = r.choice(self.seed_pipelines + [json.dumps(self.random_pipeline(True))])
        for _ in range(r.randint(1, 6)):
            i, j = sorted(r.randrange(len(text) + 1) for _ in range(2))
            text = text[:i] + r.choice(self.tokens) + text[j:]
        return text

    # ---- the calls ----------------------------------------------------------
    def cli_call(self):
        """A command line; one in ten names one of the files it reads as its
        output (refused, the input intact)."""
        r = self.rng
        o = str(self.out / f"c{self.calls}{r.choice(['.tif', '.jpg', '.dzi', '.zarr', '.ome.tif'])}")
        clobber = r.random() < 0.1
        a, b = r.choice(self.good), r.choice(self.good + self.bad)
        choices = [  # (argv without -o, the files it reads that -o could name)
            (["stitch", str(self.scan_csv)], self.good),
            (["stitch", str(self.scan_csv), "--canvas", str(r.randint(-5, 900)), str(r.randint(1, 600))], self.good),
            (["stitch", r.choice(self.bad + ["/dev/zero", "/no/such.csv"])], []),
            (["info", r.choice(self.good + self.bad)], None),
            (["merge", a, b], [a]),
            (["formats"], None),
            (["dot", str(self.scan_csv)], None),
        ]
        if self.acq:
            tiles = [str(p) for p in sorted((self.acq / "tiles").iterdir())]
            choices += [(["mosaic", str(self.acq / "TileConfiguration.txt"), "--search",
                          str(r.choice([2, 8, 20, 400]))], tiles),
                        (["mosaic", str(self.acq / "nominal.csv"), "--blend", r.choice(["feather", "none", "bogus"])],
                         tiles)]
        argv, reads = r.choice(choices)
        if reads is not None:
            argv = argv + ["-o", r.choice(reads) if clobber and reads else o]
        if r.random() < 0.2:  # a flag that does not exist, or a value cut off
            argv = argv + [r.choice(["--no-such-flag", "--tile-size", "--threads", "-o"])]
        return argv

    def check(self, kind, argv, r, elapsed, target=None):
        self.calls += 1
        tail = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        problems = []
        if r.returncode < 0:
            problems.append(f"died of signal {-r.returncode}")
        if any(m in r.stderr for m in FATAL_MARKS):
            problems.append("a crash or an escaped exception on stderr")
        if r.returncode > 0 and not tail.startswith(MESSAGE_PREFIXES):
            problems.append(f"no clear last message: {tail[:200]!r}")
        if r.returncode == 0 and target and not Path(target).exists() and not target.endswith(".dzi"):
            problems.append(f"exit 0 but no {target}")
        left = [p.name for p in self.out.iterdir() if p.name.startswith(".")]
        if left:
            problems.append(f"temporaries left: {left[:3]}")
            for p in left:
                shutil.rmtree(self.out / p, ignore_errors=True) if (self.out / p).is_dir() else (self.out / p).unlink()
        outcome = "ok" if r.returncode == 0 else f"exit {r.returncode}"
        if self.args.verbose and r.returncode:
            print(f"soak: {kind} exit {r.returncode}: {tail[:160]}")
        self.outcomes[(kind, outcome)] = self.outcomes.get((kind, outcome), 0) + 1
        if problems:
            self.fail(kind, argv, "; ".join(problems))
        if elapsed > self.args.timeout * 0.8:
            print(f"soak: slow ({elapsed:.1f} s): {kind} {argv}", flush=True)

    def fail(self, kind, argv, why):
        self.failures.append((kind, argv, why))
        print(f"soak: FAIL {kind}: {why}\n      {argv if isinstance(argv, list) else argv[:400]}", flush=True)

    def one(self):
        r = self.rng.random()
        target = None
        if r < 0.35:
            kind, doc = "pipeline", self.random_pipeline(self.rng.random() < 0.6)
            text, target = json.dumps(doc), doc["nodes"][-1]["path"]
        elif r < 0.55:
            kind, text = "mutated", self.mutated_pipeline()
        else:
            kind, text = "cli", None
        if text is not None:
            pf = self.out.parent / "p.json"
            pf.write_text(text)
            argv = ["run", str(pf), "-q"]
        else:
            argv = self.cli_call()
        t0 = time.monotonic()
        try:
            res = subprocess.run([str(self.tessera)] + argv, capture_output=True, text=True, errors="replace",
                                 timeout=self.args.timeout, cwd=self.inputs)
        except subprocess.TimeoutExpired as e:
            self.calls += 1
            self.fail(kind, text or argv, f"no end within {self.args.timeout} s (killed)")
            return
        self.check(kind, text or argv, res, time.monotonic() - t0, target)
        now = snapshot(self.inputs)  # small: every call is checked
        if now != self.digest:
            changed = [k for k in now if now.get(k) != self.digest.get(k)]
            self.fail(kind, text or argv, f"inputs changed: {changed[:5]} (exit {res.returncode})")
            self.digest = now
        if target and Path(target).exists() and target.startswith(str(self.out)):
            (shutil.rmtree if Path(target).is_dir() else os.unlink)(target)
        # outputs of CLI calls (and Deep Zoom's _files folders) do not pile up
        for p in self.out.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()

    # ---- in-process runs: RSS flat -------------------------------------------
    def in_process(self, runs):
        """Repeated runs in one process through the Python package, valid
        and failing ones mixed; the RSS sampled every 50 runs."""
        pkg = self.build / "tools" / "python"
        if not (pkg / "tessera").exists():
            print("soak: no Python package in the build: in-process runs skipped")
            return None
        pipelines = [json.dumps(self.random_pipeline(self.rng.random() < 0.5)) for _ in range(40)]
        script = r'''
import json, sys, tessera
pipelines = json.loads(sys.stdin.read())
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1]) // 1024
curve, ok, failed = [], 0, 0
for i in range(%d):
    try:
        tessera.run(pipelines[i %% len(pipelines)]); ok += 1
    except tessera.Error:
        failed += 1
    if i %% 50 == 0: curve.append(rss())
print(json.dumps({"curve": curve, "ok": ok, "failed": failed}))
''' % runs
        env = dict(os.environ, PYTHONPATH=str(pkg))
        res = subprocess.run(["/usr/bin/python3", "-c", script], input=json.dumps(pipelines), capture_output=True,
                             text=True, env=env, cwd=self.inputs, timeout=max(600, runs))
        if res.returncode != 0:
            self.fail("in-process", "python", f"exit {res.returncode}: {res.stderr[-500:]}")
            return None
        return json.loads(res.stdout.strip().splitlines()[-1])

    def main(self):
        self.prepare()
        deadline = time.monotonic() + self.args.minutes * 60
        t0 = time.monotonic()
        while time.monotonic() < deadline and self.calls < self.args.calls:
            self.one()
            if self.calls % 100 == 0:
                print(f"soak: {self.calls} calls, {len(self.failures)} failures, "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
        if snapshot(self.inputs) != self.digest:
            self.fail("inputs", "-", "inputs changed")
        ip = self.in_process(self.args.in_process)
        print(f"\nsoak: {self.calls} calls in {time.monotonic() - t0:.0f} s, seed {self.args.seed}")
        for (kind, outcome), n in sorted(self.outcomes.items()):
            print(f"  {kind:9} {outcome:8} {n}")
        if ip:
            c = ip["curve"]
            print(f"  in-process: {ip['ok']} ok, {ip['failed']} failed; RSS MB every 50 runs: {c}")
            # flat: after the first quarter (caches and pools warm), no
            # growth beyond 32 MB
            warm = c[len(c) // 4:] or c
            if warm and max(warm) - warm[0] > 32:
                self.fail("in-process", "rss", f"RSS grew {warm[0]} -> {max(warm)} MB")
        print(f"  failures: {len(self.failures)}")
        for kind, argv, why in self.failures:
            print(f"    {kind}: {why}")
        if not self.args.work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if self.failures else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--calls", type=int, default=1 << 30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--verbose", action="store_true", help="print every failing call's message")
    ap.add_argument("--in-process", type=int, default=2000, help="runs in one process for the RSS curve")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(Soak(ap.parse_args()).main())
