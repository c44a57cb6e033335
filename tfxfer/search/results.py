"""A search's results, read from its folder alone: Keras Tuner's trial files and the record tfxfer adds."""

import glob
import json
import os

import keras_tuner as kt
import pandas as pd

from tfxfer.training.phases import regime_for_depth

#: What tfxfer adds to Keras Tuner's project folder: the objective and its direction, the extractor and the space.
SEARCH_FILE = "tfxfer_search.json"


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
        A DataFrame with one row per trial: `trial_id`, `status` (COMPLETED, RUNNING, FAILED, INVALID...), every
        hyperparameter, `regime` (the plan the trial trained in), `score` (the objective), the other metrics at the
        best epoch, `epochs`, `seconds`, sorted best first (trials without a score last). `table.attrs` holds the
        `objective` and its `direction` as the search stored them, and the extractor's `n_blocks`.

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
        row.update(trial.hyperparameters.values)
        if "frozen_blocks" in row and "n_blocks" in record:
            row["regime"] = regime_for_depth(row["frozen_blocks"], record["n_blocks"])
        row["score"] = trial.score
        for name, history in trial.metrics.metrics.items():
            best = history.get_best_value()
            if best is not None and name != "cached_phases":
                row[name] = best
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
