"""A search's results, read from its folder alone: Keras Tuner's trial files and the record tfxfer adds."""

import fnmatch
import glob
import hashlib
import json
import os
import warnings

import keras_tuner as kt
import pandas as pd

from tfxfer.search import SEARCH_FILE
from tfxfer.search.space import split_candidate
from tfxfer.training.phases import regime_for_depth

#: What a search writes in its folder (Keras Tuner's oracle and `<tuner id>.json` states, its trials; tfxfer's
#: record, probe table and cache), and what a file browser leaves there.
_SEARCH_ENTRIES = ("*.json", "trial_*", "feature_cache", "probe.csv", "*.partial", ".DS_Store", "Thumbs.db",
                   "desktop.ini")


def check_own_folder(folder, overwrite):
    """Raises when `folder` holds anything a search does not write: the search's files would mix with a user's
    (a data folder's classes, a project's notes), and overwrite=True, with which Keras Tuner deletes the whole
    folder, would delete them."""
    if not os.path.isdir(folder):
        return
    foreign = sorted(name for name in os.listdir(folder)
                     if not any(fnmatch.fnmatch(name, pattern) for pattern in _SEARCH_ENTRIES))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        deleted = "and overwrite=True would delete them all" if overwrite else "which overwrite=True deletes whole"
        raise ValueError(f"{folder} holds files that no search wrote ({listed}): a search needs a folder of its own, "
                         f"{deleted}. Give the search another project_name= or directory=.")


def write_json(path, value):
    """Writes `value` as JSON to `path` through a temporary file, so a reader never sees it half written."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.partial", "w") as file:
        json.dump(value, file, indent=2)
    os.replace(f"{path}.partial", path)


def read_json(path):
    """The JSON in `path`; raises `json.JSONDecodeError` (a ValueError) when it is damaged."""
    with open(path) as file:
        return json.load(file)


def readable_json(path):
    """Whether `path` holds JSON that parses."""
    try:
        read_json(path)
        return True
    except ValueError:
        return False


def best_values(tuner):
    """The best trial's hyperparameter values (less the search's digest), or None before any trial ended."""
    best = tuner.get_best_hyperparameters(1)
    return {name: value for name, value in best[0].values.items() if name != SEARCH_DIGEST} if best else None


def data_identity(data):
    """What identifies a search's data: task, classes, split sizes, and a digest of the examples and labels.

    Image files count by their path below the data's common folder and their size (so a data set that was moved or
    copied is the same data set); texts by their contents.
    """
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        inputs, labels = data.examples(split)
        root = os.path.commonpath(inputs) if data.modality == "image" and inputs else ""
        for item, label in zip(inputs, labels.tolist()):
            if data.modality == "image":
                item = f"{os.path.relpath(item, root)}\0{os.path.getsize(item)}"
            digest.update(f"{split}\0{item}\0{label}\n".encode("utf-8", "surrogatepass"))
    return {"task_type": data.task.task_type, "class_names": [str(name) for name in data.task.class_names],
            "sizes": data.sizes, "examples": digest.hexdigest()[:16], "batch_size": data.batch_size,
            "augmentation": _augmentation(data)}


def _augmentation(data):
    """The data's training augmentation in a few words and a digest of its configuration, or None."""
    layer = getattr(data, "augmentation", None)
    if layer is None:
        return None
    config = json.dumps(layer.get_config(), sort_keys=True, default=str)
    return f"{type(layer).__name__} {hashlib.sha256(config.encode()).hexdigest()[:8]}"


#: How a search scores its trials (`_Guarded.score_trial`), recorded since 2026-12-07; searches recorded before
#: took Keras Tuner's best epoch over every phase.
SCORING = "the epoch whose weights a trial ends with"

#: How a TF Hub model's graph enters the digest of its weights, recorded since 2026-12-08; before, its functions went
#: in named and ordered as one process had loaded them, which could change from one run to the next (MiniLM's
#: preprocessor's did).
DIGEST = "graph functions as saved, in name order"

#: The hyperparameter (fixed) through which a distributed search's chief tells its workers which search it runs.
SEARCH_DIGEST = "tfxfer_search"


def search_digest(identity):
    """A digest of what defines a search (its record: data, extractor weights, space, settings), less where its
    extractors and files lie, which may differ from one machine to the next.

    Example:
        >>> search_digest({"seed": 0, "extractor": "/a/mnv1"}) == search_digest({"seed": 0, "extractor": "/b/mnv1"})
        True
    """
    kept = {key: value for key, value in identity.items()
            if key not in ("extractor", "extractor_sources", "extractor_options", "candidates")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_differences(stored, identity, resuming=True):
    """What differs between a search's stored record and another search's identity, in words; the scoring rule
    only when `resuming` (retraining a trial does not score it)."""
    differences = []
    if resuming and "extractor_weights" in stored and stored.get("scoring") != identity.get("scoring"):
        differences.append(f"trials scored by {stored.get('scoring') or 'their best epoch over every phase'} "
                           f"(tfxfer before 2026-12-07), now by {identity.get('scoring')}, whose scores would not "
                           "compare")
    old, new = stored.get("data", {}), identity["data"]
    # The images the extractor takes, recorded since 2026-12-07: one built for other images has other weights too,
    # but the size is what the user changed.
    resized = "image_size" in stored and stored["image_size"] != identity.get("image_size") and stored.get(
        "extractor_sources") == identity.get("extractor_sources")
    if resized and isinstance(identity.get("extractor_sources"), list):  # which ones, not one flag of several sizes
        changed = [f"{name!r} at {_size([then])} then, {_size([now])} now" for name, then, now in zip(
            identity["extractor"], stored["image_size"], identity["image_size"]) if then != now]
        differences.append(f"other image sizes ({'; '.join(changed)})")
    elif resized:
        differences.append(f"image_size={_size(stored['image_size'])} then, image_size="
                           f"{_size(identity.get('image_size'))} now")
    elif stored.get("extractor_weights") != identity["extractor_weights"] and stored.get("extractor_sources") == \
            identity.get("extractor_sources") and stored.get("extractor_options") != identity.get("extractor_options"):
        # (it said "other weights" of granularity='cut', a tester's find)
        differences.append(f"other options of the extractor ({stored.get('extractor_options')} then; "
                           f"{identity.get('extractor_options')} now)")
    elif stored.get("extractor_weights") != identity["extractor_weights"]:
        differences.append(_other_weights(stored, identity))
    if (old.get("task_type"), old.get("class_names")) != (new["task_type"], new["class_names"]):
        differences.append(f"another task ({old.get('task_type')} of {old.get('class_names')}, now "
                           f"{new['task_type']} of {new['class_names']})")
    elif old.get("examples") != new["examples"]:
        then, now = sizes_text(old.get("sizes")), sizes_text(new["sizes"])
        differences.append(f"other data ({then} examples then, {now} now" + (
            ": the same counts, of other files or labels, or of the same files split otherwise, as by another "
            "seed)" if then == now else ")"))
    for key, flag in (("batch_size", "batch_size"), ("augmentation", "augment")):  # recorded since 2026-12-06
        if key in old and old[key] != new[key]:
            differences.append(f"{flag}={old[key]!r} then, {flag}={new[key]!r} now" if key == "batch_size" else
                               _augmentation_change(old[key], new[key]))
    stored = {**stored, "space": stored_space(stored)} if "space" in stored else stored
    for key in ("tuner", "epochs", "patience", "seed"):
        if key in stored and stored[key] != identity[key]:
            differences.append(f"{key}={stored[key]!r} then, {key}={identity[key]!r} now")
    if "space" in stored:
        then, now = (_unordered(json.loads(json.dumps(space))) for space in (stored["space"], identity["space"]))
        changed = [name for name in sorted({*then, *now}) if then.get(name) != now.get(name)]
        if changed:
            differences.append("another search space (" + ", ".join(f"{name}={_value(then.get(name))}" for name in
                                                                    changed) + " then; " + ", ".join(
                f"{name}={_value(now.get(name))}" for name in changed) + " now)")
    if "probe" in stored and identity.get("probe") and stored["probe"] != identity["probe"]:  # not with one extractor
        def arguments(probe):  # in TransferSearch's argument names, which the command line shows as its flags
            return ", ".join(f"probe_{name}={value!r}" for name, value in (probe or {}).items())

        differences.append(f"another probe rule ({arguments(stored['probe'])} then; "
                           f"{arguments(identity.get('probe'))} now)")
    return differences


def sizes_text(sizes):
    """A data set's split sizes in words, the empty splits left out.

    Example:
        >>> sizes_text({"train": 24, "validation": 6, "test": 0})
        '24 train, 6 validation'
    """
    return ", ".join(f"{count} {split}" for split, count in (sizes or {}).items() if count)


def _other_weights(stored, identity):
    """Why the weights' digests differ, in words: the same extractor's weights, or other extractors."""
    then, now = stored.get("extractor"), identity["extractor"]
    if then != now:
        return (f"other extractors ({then!r} then; {now!r} now)" if list in (type(then), type(now)) else
                f"another extractor ({then!r} then, {now!r} now: their weights differ)")
    if stored.get("digest") != identity.get("digest"):
        return (f"other weights of {now!r}, or the same digested by an earlier tfxfer, whose digest of a TF Hub "
                "model's graph could change from one run to the next: start the search afresh (overwrite=True)")
    return f"other weights of {now!r} (trained since, or another file of that name)"


def _size(sizes):
    return ", ".join("x".join(map(str, size)) if size else "none" for size in sizes)


def _augmentation_change(then, now):
    if then is None or now is None:
        return f"augment={then is not None} then, augment={now is not None} now"
    return f"another augmentation layer ({then} then, {now} now)"


def _value(value):
    return "default" if value is None else repr(value)


def stored_space(record):
    """The `SearchSpace` fields of a search's record, with what searches recorded before a field existed: heads
    without BatchNormalization (`batch_norm`, "auto" by default since)."""
    return {"batch_norm": False, **record["space"]}


def _unordered(value):
    """A setting compared without the order of its choices (frozen_blocks [4, 2] is [2, 4])."""
    if isinstance(value, dict):
        return {key: sorted(item) if isinstance(item, list) and key == "frozen_blocks" else item
                for key, item in value.items()}
    return value


def search_record(directory, project_name):
    """The search's own record (`tfxfer_search.json`): objective, direction, tuner, extractor, blocks, space; `{}`
    when the folder has none."""
    path = os.path.join(directory, project_name, SEARCH_FILE)
    return read_json(path) if os.path.isfile(path) else {}


def search_results(directory, project_name):
    """A search's results table, read from Keras Tuner's trial files; no tuner or data needed.

    Args:
        directory: The search's `directory`.
        project_name: Its `project_name`.

    Returns:
        A DataFrame with one row per trial: `trial_id`, `status` (COMPLETED, RUNNING, FAILED, INVALID...; RUNNING
        is also a trial whose process was stopped, with its scores up to its last epoch: resuming the search runs
        it again from its start), every hyperparameter (a search across extractors has `extractor` and
        `frozen_blocks` for its `candidate`), `regime` (the plan the trial trained in), `score` (the objective), the
        other metrics at the epoch whose weights the trial ended with, `epochs`, `seconds`, sorted best first
        (trials without a score last).
        `table.attrs` holds the `objective` and its `direction` as the search stored them, and the extractor's
        `n_blocks`.

    Example:
        >>> table = search_results(search.directory, search.project_name)
        >>> list(table.columns[:3]), table.attrs["objective"]
        (['trial_id', 'status', 'frozen_blocks'], 'val_accuracy')
    """
    record = search_record(directory, project_name)
    direction = record.get("direction", "max")
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, project_name, "trial_*", "trial.json"))):
        trial = kt.engine.trial.Trial.load(path)
        row = {"trial_id": trial.trial_id, "status": trial.status}
        values = dict(trial.hyperparameters.values)
        values.pop(SEARCH_DIGEST, None)
        if "candidate" in values:  # a search across extractors: which one, and how deep
            row["extractor"], row["frozen_blocks"] = split_candidate(values.pop("candidate"))
        row.update(values)
        n_blocks = record.get("n_blocks")
        if isinstance(n_blocks, dict):
            n_blocks = n_blocks.get(row.get("extractor"))
        if "frozen_blocks" in row and n_blocks is not None:
            row["regime"] = regime_for_depth(row["frozen_blocks"], n_blocks)
        row["score"] = trial.score
        for name, history in trial.metrics.metrics.items():
            # Each metric at the scored epoch (each one's own best would mix epochs in one row); the
            # totals, reported once at the end, as they stand.
            at_best = [obs.mean() for obs in history.get_history() if obs.step == trial.best_step]
            value = at_best[0] if at_best else history.get_last_value()
            if value is not None and name != "cached_phases":
                row[name] = value
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        for column in ("epochs", "seconds"):
            if column in table:
                table[column] = table[column].astype(float)
        table = table.sort_values("score", ascending=direction == "min", na_position="last", kind="stable")
        table = table.reset_index(drop=True)
    table.attrs.update(objective=record.get("objective", "score"), direction=direction)
    if "n_blocks" in record:
        table.attrs["n_blocks"] = record["n_blocks"]
    return table


def report_failed_trials(oracle, project_dir):
    """Keras Tuner ends a search whose trials all failed without an error when they were fewer than its
    `max_consecutive_failed_trials`; a search with nothing to show says why instead."""
    trials = list(oracle.trials.values())
    failed = [trial for trial in trials if trial.status == "FAILED"]
    if not failed:
        return
    lines = [line for line in (failed[0].message or "").strip().splitlines() if line.strip()]
    why = (f"the first with: {lines[-1].strip() if lines else 'no message'} (each trial's traceback is in "
           f"{project_dir}/trial_*/trial.json)")
    if not any(trial.status == "COMPLETED" for trial in trials):
        raise RuntimeError(f"Every trial of the search failed ({len(failed)} of {len(trials)}); {why}.")
    warnings.warn(f"{len(failed)} of the search's {len(trials)} trials failed, {why}; the table shows them as "
                  "FAILED.", stacklevel=3)
