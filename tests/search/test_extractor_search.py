"""A search across several extractors: the probe picks the (extractor, freeze depth) candidates, the results say
which extractor each trial trained, and a search killed with SIGKILL resumes with each trial's extractor kept."""

import json
import subprocess
import sys

import pandas as pd
import pytest

import tfxfer
from helpers import TESTS, completed_trials, kill_after_trials, noise_folders, tiny_cnn
from tfxfer.search import SearchSpace, TransferSearch
from tfxfer.search.candidates import choose_candidates


@pytest.fixture
def data(tmp_path):
    folder = noise_folders(tmp_path / "images", per_class=8)
    return tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                              seed=3)


def _two_extractors():
    other = tiny_cnn(seed=1)
    other.name = "other_cnn"
    return [tiny_cnn(), other]


def test_the_probe_chooses_the_candidates_and_the_table_names_each_trials_extractor(data, tmp_path):
    search = TransferSearch(extractors=_two_extractors(), max_trials=2, epochs=1, patience=None,
                            directory=tmp_path / "runs", project_name="p", space=SearchSpace(warmup_epochs=1),
                            probe_margin=1.0, verbose=0)
    table = search.search(data)
    probed = pd.read_csv(tmp_path / "runs" / "p" / "probe.csv")
    assert set(probed.extractor) == {"tiny_cnn", "other_cnn"} and len(probed) == 8
    assert search.hypermodel_.candidates == choose_candidates(probed, {"tiny_cnn": 4, "other_cnn": 4}, margin=1.0)
    assert len(table) == 2 and "candidate" not in table
    assert set(table.extractor) <= {"tiny_cnn", "other_cnn"}
    chosen = {f"{row.extractor}@{row.frozen_blocks}" for row in table.itertuples()}
    assert chosen <= set(search.hypermodel_.candidates)
    assert all(row.regime == ("feature-extraction" if row.frozen_blocks == 4 else "mid-layer")
               for row in table.itertuples())
    best = search.best_model(data, retrain=False)
    assert (best.extractor.source, best.freeze_blocks) == (table.extractor[0], table.frozen_blocks[0])
    extractors = [member.extractor for member in search.hypermodel_.members.values()]
    changed = TransferSearch(extractors=extractors, max_trials=3, epochs=1, patience=None, directory=tmp_path / "runs",
                             project_name="p", space=SearchSpace(warmup_epochs=1), probe_margin=0.5, verbose=0)
    with pytest.raises(ValueError, match=r"another probe rule \(probe_score='linear', probe_margin=1.0 then; "
                       r"probe_score='linear', probe_margin=0.5 now\)"):
        changed.search(data)


@pytest.mark.parametrize("extractors, options, message", [
    ("./glove", {}, r"takes a list of several extractors; got one \('./glove'\)"),
    (["a", "b"], {"probe_margin": -1}, "probe_margin must be a number >= 0"),
    (["a", "b"], {"probe_margin": float("nan")}, "probe_margin must be a number >= 0"),
    (["a", "b"], {"probe_score": "auc"}, "probe_score must be one of"),
])
def test_a_search_across_extractors_refuses_a_rule_it_cannot_follow_when_made(extractors, options, message):
    with pytest.raises(ValueError, match=message):
        TransferSearch(extractors=extractors, **options)


def test_the_probe_leaves_out_an_extractor_far_below_the_best():
    table = pd.DataFrame({"extractor": ["a", "a", "b", "b"], "cut": [1, 2, 1, 2], "linear": [0.7, 0.9, 0.5, 0.6]})
    assert choose_candidates(table, {"a": 2, "b": 2}, margin=0.1) == ["a@2", "a@1"]
    assert choose_candidates(table, {"a": 2, "b": 2}, margin=0.3) == ["a@2", "a@1", "b@2", "b@1"]
    with pytest.raises(ValueError, match="no 'knn' score"):
        choose_candidates(table, {"a": 2, "b": 2}, score="knn")


def test_of_cuts_that_tie_the_probe_picks_the_deepest_and_passes_over_missing_scores():
    # MiniLM on 1,000 SMS texts: cuts 3 and 6 of 7 tied at 0.995; the deeper one trains 3 layers fewer
    table = pd.DataFrame({"extractor": ["m"] * 7, "cut": range(1, 8),
                          "linear": [0.990, 0.985, 0.995, 0.990, 0.990, 0.995, 0.990]})
    assert choose_candidates(table, {"m": 7}) == ["m@6", "m@5", "m@7"]
    assert choose_candidates(table.assign(linear=[0.9, None, 0.8, None, 0.7, 0.9, None]), {"m": 7}) == [
        "m@6", "m@5", "m@7"]
    with pytest.raises(ValueError, match=r"'linear' score is missing \(NaN\) at every cut of \['m'\].*another "
                       "probe_score"):  # a constant regression target in validation: no R² anywhere
        choose_candidates(table.assign(linear=float("nan")), {"m": 7})


@pytest.mark.parametrize("options, message", [
    ({"extractor": "a", "extractors": ["a", "b"]}, "not both"),
    ({}, "not neither"),
    ({"extractors": ["a"]}, "got 1"),
    ({"extractors": ["a", "b"], "space": SearchSpace(frozen_blocks=[2])}, "probe chooses"),
    ({"extractors": ["a", "b"], "probe_score": "accuracy"}, "probe_score"),
])
def test_bad_extractor_arguments_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        TransferSearch(**options)


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import tfxfer
from tfxfer.search import SearchSpace, TransferSearch
data = tfxfer.load_images({images!r}, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                          seed=3)
search = TransferSearch(extractors={extractors!r}, max_trials=3, epochs=2, directory={runs!r}, project_name="p",
                        space=SearchSpace(warmup_epochs=1), probe_margin=1.0, patience=None, verbose=0)
table = search.search(data)
print("TRIALS", len(table), sorted(table.status), sorted(set(table.extractor)))
"""


def _candidates(project):
    """`{trial folder: candidate}` of the completed trials (the same trials `completed_trials` counts)."""
    done = completed_trials(project)
    return {path.parent.name: json.loads(path.read_text())["hyperparameters"]["values"]["candidate"]
            for path in project.glob("trial_*/trial.json") if path.parent.name.removeprefix("trial_") in done}


@pytest.mark.slow
def test_a_search_across_two_extractors_resumes_after_sigkill_with_each_trials_extractor_kept(tmp_path):
    extractors = [str(tfxfer.save_hub_format(tiny_cnn(seed=seed), tmp_path / name))
                  for seed, name in ((0, "first"), (1, "second"))]
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), images=str(noise_folders(tmp_path / "images", per_class=8)),
                                    extractors=extractors, runs=str(tmp_path / "runs")))
    project = tmp_path / "runs" / "p"
    before, chosen = kill_after_trials(script, project, 1), _candidates(project)
    assert 1 <= len(before) < 3, "the kill should land mid-search"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRIALS 3 ['COMPLETED', 'COMPLETED', 'COMPLETED']" in result.stdout
    after = completed_trials(project)
    assert all(after[trial_id] == mtime for trial_id, mtime in before.items()), "a completed trial ran again"
    assert {trial: _candidates(project)[trial] for trial in chosen} == chosen
    record = json.loads((project / "tfxfer_search.json").read_text())
    assert record["extractor"] == extractors and len(record["candidates"]) >= 2
    assert all(candidate.rpartition("@")[0] in extractors for candidate in _candidates(project).values())


def test_a_resume_finds_its_extractors_moved_and_given_in_another_order(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    tfxfer.save_hub_format(tiny_cnn(), first)
    tfxfer.save_hub_format(tiny_cnn(seed=1), second)

    def search(sources, trials):
        return TransferSearch(extractors=[(str(source), {"name": "x"}) for source in sources], max_trials=trials,
                              epochs=1, patience=None, directory="runs", project_name="p", probe_margin=1.0,
                              space=SearchSpace(warmup_epochs=1), verbose=0)

    search(["a", "b"], 1).search(data)  # relative paths, with an option
    record = json.loads((tmp_path / "runs" / "p" / "tfxfer_search.json").read_text())
    # It named each extractor by its key ('a(name=x)'), which from_folder then loaded (a tester's find).
    assert record["extractor"] == [f"{first}(name=x)", f"{second}(name=x)"]
    assert record["extractor_sources"] == [str(first), str(second)]
    moved = tmp_path / "moved"
    first.rename(moved)
    resumed = search([second, moved], 3)
    table = resumed.search(data)  # every new trial FAILED (KeyError on the old path), and it exited 0 (a tester's)
    assert len(table) == 3 and set(table.status) == {"COMPLETED"}, table
    assert set(table.extractor) <= set(record["extractor"])  # named as the search recorded them
    assert resumed.best_model(data, retrain=False).extractor.fingerprint(4) in resumed.hypermodel_.fingerprint
    names, record = record["extractor"], json.loads((tmp_path / "runs" / "p" / "tfxfer_search.json").read_text())
    assert record["extractor"] == names and record["extractor_sources"] == [str(moved), str(second)]  # found now
    monkeypatch.chdir(moved)  # as `tfxfer export --search` from another folder
    again = TransferSearch.from_folder(tmp_path / "runs" / "p", verbose=0).best_model(data, retrain=False)
    assert again.extractor.source in record["extractor_sources"]

