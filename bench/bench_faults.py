"""Issue 10, long variants: the whole bad-input corpus, and faults injected into real processes.

Sections (all by default, or those named with --only):

- corpus: every case of tests/faults/test_faults_corpus.py and test_faults_users.py (CI runs the fast ones),
  classified by the same `classify`:
  clear error / counted skip / accepted / bare traceback / silent drop.
- search-kills: one local search SIGKILLed at --kills random moments, resumed after each; then run to the end.
  Survived = the next process resumed without error, no completed trial ran again, the final table is complete.
- export-kills: an exporting process SIGKILLed at --kills random moments; no half version ever visible, every
  earlier version byte-identical, every version loads and serves.
- chief-restarts: a chief and two workers on 127.0.0.1; the chief SIGKILLed at --chief-kills random moments and
  restarted with the same arguments and port (a search of --chief-trials trials).
- worker-kill: a chief and two workers; one worker SIGKILLed mid-trial (the watchdog reclaims its trial).
- watchdog: a chief and two workers, nobody killed, worker_timeout shorter than a trial.
- memory: one fine-tuning run on images whose decoded size is about twice the process's data limit (RLIMIT_DATA),
  with the decoded images cached in memory, then on disk.
- image-bomb: time and peak memory of loading a folder holding a 20000 x 20000 PNG bomb.
- disk: which full / read-only file systems this machine lets the tests mount.

Prints Markdown (and writes it to --out).

Usage: python bench/bench_faults.py [--only corpus search-kills ...] [--kills 10] [--seed 0] [--out FILE]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
sys.path[:0] = [str(BENCH), str(TESTS), str(TESTS / "faults"), str(TESTS / "serving")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402
from test_faults_corpus import ACCEPTED, BARE, CASES, CLEAR, SILENT, SKIP, Workspace, classify  # noqa: E402
from test_faults_users import CASES as USERS_CASES  # noqa: E402
from test_faults_kills import (running_after_an_end, runs_after_completion, search_script, start_search,  # noqa: E402
                               trial_log, wait_for)
from helpers import completed_trials, free_port  # noqa: E402

SECTIONS = ("corpus", "search-kills", "export-kills", "chief-restarts", "worker-kill", "watchdog", "memory", "image-bomb",
            "disk")


def _scratch(name):
    return Path(tempfile.mkdtemp(prefix=f"tfxfer-faults-{name}-"))


def corpus(args):
    shared = _scratch("shared")
    rows = []
    for case in CASES + USERS_CASES:
        workspace = Workspace(_scratch("case"), shared)
        started = time.perf_counter()
        outcome = classify(case, workspace)
        rows.append((case, outcome, time.perf_counter() - started))
        print(f"  {outcome.kind:15} {case.kind}", file=sys.stderr)
    kinds = Counter(outcome.kind for _, outcome, _ in rows)
    lines = ["| # | area | bad input | expected | outcome | evidence |", "|---:|---|---|---|---|---|"]
    for index, (case, outcome, _) in enumerate(rows, 1):
        evidence = outcome.detail.replace("|", "\\|").replace("\n", " ")
        evidence = evidence if len(evidence) <= 220 else evidence[:217] + "..."
        flag = "" if outcome.kind == case.expect else " **≠ expected**"
        lines.append(f"| {index} | {case.area} | {case.kind}{' (CI)' if case.fast else ''} | {case.expect} | "
                     f"{outcome.kind}{flag} | {evidence} |")
    total = (f"**Inputs tried {len(rows)}** ({sum(case.fast for case, _, _ in rows)} of them in CI), across "
             f"{len({case.area for case, _, _ in rows})} areas: clear error {kinds[CLEAR]}, counted skip "
             f"{kinds[SKIP]}, accepted {kinds[ACCEPTED]}, **bare traceback {kinds[BARE]}, silent drop {kinds[SILENT]}**"
             f"; {sum(outcome.kind != case.expect for case, outcome, _ in rows)} not as expected.")
    shutil.rmtree(shared, ignore_errors=True)
    return "\n".join([total, "", *lines])


def _moment(log, pid):
    """What the process `pid` was doing when killed, from the trial log."""
    own = [(event, trial) for event, trial, _, process_id in log if process_id == str(pid)]
    if not own:
        return "starting (imports, data, oracle reload)"
    event, trial = own[-1]
    return f"in trial {trial}" if event == "start" else f"after trial {trial}"


def search_kills(args):
    rng = random.Random(args.seed)
    folder = _scratch("search")
    trials = args.search_trials
    script = search_script(folder, trials=trials, epochs=3)
    project = folder / "runs" / "p"
    first_completion, rows, problems = {}, [], []
    for index in range(args.kills):
        before = len(completed_trials(project))
        process = start_search(script)
        delay = rng.uniform(1.0, 20.0)
        try:
            process.wait(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
            log = trial_log(folder)
            process.send_signal(signal.SIGKILL)
        _, err = process.communicate()
        moment = "finished before the kill" if finished else _moment(log, process.pid)
        for trial_id, mtime in completed_trials(project).items():
            first_completion.setdefault(trial_id, mtime)
        ok = process.returncode == -signal.SIGKILL or (finished and process.returncode == 0)
        if not ok:
            problems.append(f"resume {index} exited {process.returncode}: {err.strip().splitlines()[-1:]}")
        rows.append(f"| {index + 1} | {delay:.1f} | {before} | {moment} | {process.returncode} |")
        if finished:
            break
    final = start_search(script)
    out, err = final.communicate(timeout=1800)
    after = completed_trials(project)
    rewritten = sorted(t for t, mtime in first_completion.items() if after.get(t) != mtime)
    again = runs_after_completion(trial_log(folder))
    complete = final.returncode == 0 and f"TRIALS {trials} {sorted(['COMPLETED'] * trials)}" in out
    kills = sum(1 for row in rows if not row.endswith("| 0 |"))
    survived = kills if complete and not again and not rewritten and not problems else "see below"
    lines = [f"Search of {trials} trials (tiny CNN, noise images, 3 epochs a phase), seed {args.seed}: "
             f"**kills tried {kills}, survived {survived}**. Final run: exit {final.returncode}, table complete: "
             f"{complete}; completed trials run again: {again or 'none'}; completed trials whose trial.json changed "
             f"afterwards: {rewritten or 'none'}; resumes that failed: {problems or 'none'}.", "",
             "| kill | seconds after start | trials completed before | the process was | exit |",
             "|---:|---:|---:|---|---:|", *rows]
    if final.returncode:
        lines.append(f"\nFinal run stderr: `{err.strip().splitlines()[-1:]}`")
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(lines)


def export_kills(args):
    import tensorflow as tf

    from helpers import tiny_cnn
    from helpers import checksums, is_whole_version
    from test_export import image_files, start_exporter
    from tfxfer.serving import versions
    from tfxfer.extractors import save_hub_format

    rng = random.Random(args.seed)
    folder = _scratch("export")
    hub = save_hub_format(tiny_cnn(), folder / "tiny_hub")
    model_folder = folder / "saved_models" / "shared"
    rows, partial_seen, changed = [], [], []
    for index in range(args.kills):
        before = {v: checksums(model_folder / str(v)) for v in versions(model_folder)}
        process = start_exporter(hub, folder / "saved_models", 1000)
        process.stdin.write("go\n")
        process.stdin.flush()
        delay = rng.uniform(0.3, 4.0)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:  # a reader listing versions while they are written
            partial_seen += [v for v in versions(model_folder) if not is_whole_version(model_folder / str(v))]
        process.send_signal(signal.SIGKILL)
        process.communicate()
        now = versions(model_folder)
        changed += [v for v in before if checksums(model_folder / str(v)) != before[v]]
        leftovers = [p.name for p in model_folder.iterdir() if not p.name.isdigit()] if model_folder.exists() else []
        rows.append(f"| {index + 1} | {delay:.2f} | {len(before)} | {len(now) - len(before)} | "
                    f"{all(is_whole_version(model_folder / str(v)) for v in now)} | {len(leftovers)} |")
    jpeg = tf.constant([image_files(folder / "image", count=1)[0].read_bytes()])
    found = versions(model_folder)
    serving = all(tf.saved_model.load(str(model_folder / str(v))).signatures["serving_default"](
        image_bytes=jpeg)["scores"].shape == (1, 3) for v in found)
    kills = len(rows)
    survived = kills if not partial_seen and not changed and serving and found == list(range(1, len(found) + 1)) \
        else "see below"
    lines = [f"**Kills tried {kills}, survived {survived}**: {len(found)} versions written in all, numbered "
             f"1..{len(found)} without gaps: {found == list(range(1, len(found) + 1))}; half versions seen by the "
             f"reader: {len(partial_seen)}; earlier versions changed: {len(changed)}; every version loads and serves "
             f"a JPEG: {serving}. (Temporary folders of killed exports stay until the next export on this machine "
             "removes them.)", "",
             "| kill | seconds after go | versions before | versions added | all whole | temporary folders left |",
             "|---:|---:|---:|---:|---|---:|", *rows]
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(lines)


def _distributed(folder, script, port, worker_ids=("tuner0", "tuner1")):
    processes = {"chief": start_search(script, "chief", port)}
    processes.update({tuner_id: start_search(script, tuner_id, port) for tuner_id in worker_ids})
    return processes


def _finish(processes, timeout=1200):
    results = {}
    for name, process in processes.items():
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results[name] = (process.returncode, out, err)
    return results


def _runs(log):
    started = Counter(trial for event, trial, *_ in log if event == "start")
    return {trial: count for trial, count in started.items() if count > 1}


def _summary(folder, trials, results):
    from tfxfer.search import search_results

    table = search_results(folder / "runs", "p")
    complete = len(table) == trials and set(table.status) == {"COMPLETED"}
    exits = {name: code for name, (code, _, _) in results.items()}
    errors = {name: err.strip().splitlines()[-1] for name, (code, _, err) in results.items() if code}
    log = trial_log(folder)
    unfinished = {row.trial_id: row.status for row in table.itertuples() if row.status != "COMPLETED"}
    return complete, exits, errors, runs_after_completion(log), _runs(log), unfinished


def chief_restarts(args):
    rng = random.Random(args.seed)
    folder = _scratch("chief")
    trials = args.chief_trials
    script = search_script(folder, trials=trials, epochs=3)
    port = free_port()
    processes = _distributed(folder, script, port)
    rows = []
    for index in range(args.chief_kills):
        delay = rng.uniform(8.0, 20.0)
        time.sleep(delay)
        if all(processes[w].poll() is not None for w in ("tuner0", "tuner1")):
            break
        ongoing = json.loads((folder / "runs" / "p" / "oracle.json").read_text())["ongoing_trials"] \
            if (folder / "runs" / "p" / "oracle.json").exists() else {}
        processes["chief"].send_signal(signal.SIGKILL)
        processes["chief"].communicate()
        rows.append(f"| {index + 1} | {delay:.1f} | {len(completed_trials(folder / 'runs' / 'p'))} | "
                    f"{sorted(ongoing.values()) or 'none'} |")
        time.sleep(1)
        processes["chief"] = start_search(script, "chief", port)
    results = _finish(processes)
    complete, exits, errors, again, repeated, unfinished = _summary(folder, trials, results)
    kills = len(rows)
    workers_back = all(exits.get(w) == 0 for w in ("tuner0", "tuner1"))
    lines = [f"Chief and 2 workers, {trials} trials; the chief killed {kills} times and restarted on the same port. "
             f"Exit codes {exits}; errors: {errors or 'none'}. **Kills tried {kills}; the workers reconnected and the "
             f"search completed with its table complete: {workers_back and complete}; without running a completed "
             f"trial again: {workers_back and complete and not again}** (trials ended more than once: "
             f"{again or 'none'}; started more than once: {repeated or 'none'}).",
             "", "| chief kill | seconds after the previous start | trials completed | trials running at the chief |",
             "|---:|---:|---:|---|", *rows]
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(lines)


def worker_kill(args):
    folder = _scratch("worker")
    trials = 6
    script = search_script(folder, trials=trials, epochs=3, worker_timeout=20)
    processes = _distributed(folder, script, free_port())
    wait_for(lambda: running_after_an_end(trial_log(folder)), timeout=600)
    victim = processes.pop("tuner1")
    moment = _moment(trial_log(folder), victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    results = _finish(processes)
    complete, exits, errors, again, repeated, unfinished = _summary(folder, trials, results)
    shutil.rmtree(folder, ignore_errors=True)
    return (f"Chief and 2 workers, {trials} trials, worker_timeout 20 s; worker tuner1 killed {moment}. Exit codes "
            f"{exits}; errors: {errors or 'none'}. **Kills tried 1, survived {1 if complete else 0}** (final table "
            f"complete: {complete}; trials not completed: {unfinished or 'none'}); trials ended more than once: "
            f"{again or 'none'}; trials started more than once: {repeated or 'none'}.")


def watchdog(args):
    folder = _scratch("watchdog")
    trials = 4
    script = search_script(folder, trials=trials, epochs=12, worker_timeout=4)
    started = time.perf_counter()
    results = _finish(_distributed(folder, script, free_port()))
    complete, exits, errors, again, repeated, unfinished = _summary(folder, trials, results)
    log = trial_log(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return (f"Chief and 2 workers, {trials} trials of 12 epochs a phase, worker_timeout 4 s, no process killed "
            f"({time.perf_counter() - started:.0f} s). Exit codes {exits}; table complete: {complete}. **Trials "
            f"started more than once: {repeated or 'none'}; ended more than once: {again or 'none'}** "
            f"({sum(1 for e, *_ in log if e == 'start')} trial runs for {trials} trials).")


MEMORY_RUN = textwrap.dedent("""
    import resource, sys, time
    sys.path.insert(0, sys.argv[4])
    import tfxfer
    print("TFXFER", tfxfer.__file__.rsplit("/", 2)[0], flush=True)
    from helpers import tiny_cnn
    extractor = tfxfer.load_extractor(tiny_cnn(input_shape=(192, 192, 3)))
    cache = True if sys.argv[2] == "memory" else sys.argv[2] + "/decoded"
    data = tfxfer.load_images(sys.argv[1], extractor=extractor, batch_size=16, validation_split=0.1, cache=cache)
    features = tfxfer.FeatureCache(sys.argv[2] + "/features", memory_limit_bytes=1024, progress=False) \\
        if cache is not True else True
    started = time.perf_counter()
    model = tfxfer.TransferModel(extractor, regime="fine-tune", warmup_epochs=1, epochs=2, freeze_blocks=0,
                                 patience=None, cache=features, verbose=0).fit(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT trained: {len(model.history_['loss'])} epochs, {time.perf_counter() - started:.0f} s, peak RSS "
          f"{peak:.0f} MB")
""")


def _death(result):
    """How a child process ended: the signal that killed it, or its exit code, and its last words (not TF's logs)."""
    words = [line.strip() for line in result.stderr.splitlines()
             if line.strip() and not re.match(r"[EWI]\d{4} |WARNING: All log|To enable the following", line)]
    how = (f"killed by {signal.Signals(-result.returncode).name}" if result.returncode < 0
           else f"exit {result.returncode}")
    return f"{how}" + (f", `{words[-1][:160]}`" if words else ", no message")


def _limits(data_bytes):
    """Limits for a child process, set before it starts: its data segment, and 4 MiB thread stacks (glibc reserves
    RLIMIT_STACK per thread, 8 MiB by default, and those reservations count against RLIMIT_DATA; TensorFlow starts
    dozens of threads)."""
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_STACK, (4 * 1024**2, 4 * 1024**2))
        resource.setrlimit(resource.RLIMIT_DATA, (data_bytes, data_bytes))
    return apply


def memory(args):
    import numpy as np
    import tensorflow as tf

    folder = _scratch("memory")
    count, side, limit = args.memory_images, 192, int(args.memory_limit_gib * 1024**3)
    rng = np.random.default_rng(0)
    for index in range(count):  # tiny PNGs, upscaled to 192x192 when decoded
        name = ("ants", "bees")[index % 2]
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        pixels = np.clip(rng.normal(80 + 90 * (index % 2), 40, (12, 12, 3)), 0, 255).astype("uint8")
        tf.io.write_file(str(folder / "images" / name / f"{index}.png"), tf.io.encode_png(pixels))
    decoded = count * side * side * 3 * 4
    rows = []
    for where in ("memory", str(folder / "disk")):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", MEMORY_RUN, str(folder / "images"), where, str(limit),
                                 str(TESTS)], capture_output=True, text=True, timeout=3600,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, preexec_fn=_limits(limit),
                                cwd=folder)  # not the checkout: a PYTHONPATH of another tfxfer must win
        outcome = next((line[7:] for line in result.stdout.splitlines() if line.startswith("RESULT")), None)
        if outcome is None:
            outcome = f"failed: {_death(result)}"
        source = next((line[7:] for line in result.stdout.splitlines() if line.startswith("TFXFER")), "?")
        outcome += f" (tfxfer from {source})"
        on_disk = sum(p.stat().st_size for p in (folder / "disk").rglob("*") if p.is_file()) \
            if where != "memory" and (folder / "disk").exists() else 0
        rows.append(f"| {'in memory (cache=True)' if where == 'memory' else 'on disk (cache=folder, FeatureCache(directory))'} "
                    f"| {outcome} | {on_disk / 1024**2:.0f} MB | {time.perf_counter() - started:.0f} |")
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join([f"{count} images decoded to {side}x{side}x3 float32: {decoded / 1024**3:.2f} GiB; the process's "
                      f"data segment limited to {limit / 1024**3:.2f} GiB (RLIMIT_DATA; thread stacks 4 MiB). Fine-tuning: 1 warm-up epoch, "
                      "then 2 epochs with every block trainable (end to end, reading the decoded images).", "",
                      "| decoded images cached | result | on disk afterwards | wall s |", "|---|---|---:|---:|", *rows])


BOMB_RUN = textwrap.dedent("""
    import resource, sys, time
    sys.path.insert(0, sys.argv[2])
    import tfxfer
    started = time.perf_counter()
    try:
        data = tfxfer.load_images(sys.argv[1], image_size=(8, 8), value_range=(0, 1), validation_split=0)
        outcome = f"loaded {sum(data.sizes.values())} images"
    except Exception as error:
        outcome = f"{type(error).__name__}: {str(error)[:150]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT {time.perf_counter() - started:.2f} | {peak:.0f} | {outcome}")
""")


def image_bomb(args):
    from helpers import noise_folders
    from test_faults_corpus import png_bomb

    folder = _scratch("bomb")
    rows = []
    for name, bomb in (("none", None), ("20000 x 20000 PNG", (20000, 20000))):
        images = noise_folders(folder / name.split()[0], per_class=4, classes=("ants", "bees"))
        if bomb:
            (images / "ants" / "bomb.png").write_bytes(png_bomb(*bomb))
            name += f" of {(images / 'ants' / 'bomb.png').stat().st_size / 1024:.0f} KB"
        result = subprocess.run([sys.executable, "-c", BOMB_RUN, str(images), str(TESTS)], capture_output=True,
                                text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        line = next((line[7:] for line in result.stdout.splitlines() if line.startswith("RESULT")),
                    f"exit {result.returncode}")
        rows.append(f"| {name} | {line} |")
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(["`load_images` on 8 noise PNGs, plus the bomb, in a fresh process (the peak RSS includes "
                      "TensorFlow's own).", "", "| bomb | seconds | peak RSS MB | outcome |", "|---|---:|---:|---|", *rows])


def disk(args):
    folder = _scratch("disk")
    checks = {"tmpfs of 1 MiB (a disk that fills)": ["-t", "tmpfs", "-o", "size=1m", "tmpfs"],
              "read-only bind mount": ["--bind", str(folder)]}
    lines = []
    for name, arguments in checks.items():
        where = folder / "mount"
        where.mkdir(exist_ok=True)
        result = subprocess.run(["mount", *arguments, str(where)], capture_output=True, text=True)
        ok = result.returncode == 0
        if ok and name.startswith("read-only"):
            ok = subprocess.run(["mount", "-o", "remount,bind,ro", str(where)]).returncode == 0
        if result.returncode == 0:
            subprocess.run(["umount", str(where)])
        lines.append(f"- {name}: {'mounted' if ok else 'refused: ' + result.stderr.strip()}")
    shutil.rmtree(folder, ignore_errors=True)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--kills", type=int, default=10, help="random kill points of a search and of an export")
    parser.add_argument("--chief-kills", type=int, default=5)
    parser.add_argument("--chief-trials", type=int, default=40, help="trials of the search whose chief is killed")
    parser.add_argument("--search-trials", type=int, default=24)
    parser.add_argument("--memory-images", type=int, default=8500)
    parser.add_argument("--memory-limit-gib", type=float, default=1.75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args()
    command = "python bench/bench_faults.py " + " ".join(sys.argv[1:])
    parts = [f"Command: `{command.strip()}`", f"Machine: {machine()}",
             f"Started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
             f"{os.getloadavg()[0]:.1f}", ""]
    for section in args.only:
        started = time.perf_counter()
        print(f"== {section}", file=sys.stderr)
        body = globals()[section.replace("-", "_")](args)
        parts += [f"### {section} ({time.perf_counter() - started:.0f} s)", "", body, ""]
        print(body, file=sys.stderr)
    text = "\n".join(parts)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
