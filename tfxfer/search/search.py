"""`TransferSearch`: a Keras Tuner search over freeze depth, learning rates and the head, on cached activations
where possible, resumable and distributable.

Each trial is a `TransferModel` whose regime follows from its freeze depth (`tfxfer.training.phases`): with every
block frozen, deep feature extraction; with k < n frozen, a head warm-up on the frozen extractor, then the blocks
after k at `fine_tune_learning_rate` (k = 0 full fine-tuning, else mid-layer). All trials share one `FeatureCache`:
the activations at each cut (the output, for every warm-up and feature-extraction trial) are computed once.

Across several extractors (`extractors=[...]`), the extractor is a hyperparameter too: the search first probes
every cut of every extractor on frozen features (`tfxfer.probe`, stored in the project folder as `probe.csv`) and
its trials go to the (extractor, freeze depth) candidates the probe ranks highest (`tfxfer.search.candidates`).

The search is Keras Tuner's own: its oracles (random, Bayesian, Hyperband; subclassed in `distributed` with guards
for dead workers and restarted chiefs), its project folder (a search started again with the same `directory` and
`project_name` resumes: completed trials are not run again, a trial that was running is run again), and its
chief/worker distribution (set `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`, or use
`tfxfer tune --chief/--worker`).
"""

import dataclasses
import glob
import inspect
import json
import os
import time

import keras_tuner as kt
import pandas as pd

from tfxfer import _compat
from tfxfer.search.candidates import check_probe_rule, choose_candidates
from tfxfer.search.distributed import Watchdog, answer_late_workers, check_chiefs_search, patient_workers
from tfxfer.search.hypermodel import TransferHyperModel, extractor_key
from tfxfer.search.probing import probe
from tfxfer.search.results import (DIGEST, SCORING, SEARCH_FILE, best_values, check_own_folder, data_identity,
                                   read_json, readable_json, record_differences, report_failed_trials, search_digest,
                                   search_record, search_results, sizes_text, stored_space, write_json)
from tfxfer.search.space import SearchSpace
from tfxfer.search.tuners import TUNERS, make_tuner
from tfxfer.training import FeatureCache


class TransferSearch:
    """A Keras Tuner search over freeze depth, learning rates and the head, resumable and distributable.

    Args:
        extractor: An `Extractor` or a source for `tfxfer.load_extractor`.
        extractors: Instead of `extractor`, several of them (or `(source, options)` pairs): the search probes them
            and tunes the (extractor, freeze depth) pairs the probe ranks highest (`SearchSpace.frozen_blocks` must
            then be left to the probe).
        probe_score: With `extractors`, the probe score that ranks them (`"linear"`, `"knn"` or `"logme"`).
        probe_margin: With `extractors`, how far below the best probe score an extractor may be and still be tried.
        space: A `SearchSpace` (defaults cover every freeze depth, both learning rates and the head).
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: Trials to run (for Hyperband, its `max_epochs` is `epochs` instead).
        objective: A Keras Tuner objective; by default from the task: `val_accuracy` (multi-class), `val_auc`
            (multi-label), `val_loss` (regression).
        epochs: Most epochs of each phase of a trial.
        patience: Early-stopping patience.
        directory: Keras Tuner's folder; the feature cache lives in `<directory>/<project_name>/feature_cache`.
        project_name: The search's name in `directory`. A search with the same folder and name resumes.
        overwrite: Start afresh, deleting an earlier search of that name.
        seed: The oracle's seed and each trial's (its head's first weights): run again, a search scores the same.
        cache: Share cached activations across trials (True) or train every trial end to end (False).
        strategy: A `tf.distribute.Strategy`, e.g. from `tfxfer.pick_strategy()`.
        extractor_options: Keyword arguments of `load_extractor`.
        worker_timeout: On a distributed search's chief: seconds without a report from a worker (reports come
            after every epoch) after which its trial goes to another worker; None never gives up on a worker.
        verbose: Keras Tuner's and Keras' verbosity.
        **tuner_options: More arguments of the Keras Tuner class (e.g. `num_initial_points`, `factor`).

    Example:
        >>> search = TransferSearch(extractor, max_trials=2, epochs=1, directory=tmp_dir, project_name="ants",
        ...                         space=SearchSpace(frozen_blocks=[2, 4], warmup_epochs=1), verbose=0)
        >>> table = search.search(data)
        >>> len(table), table.attrs["objective"], set(table.regime) <= {"feature-extraction", "mid-layer"}
        (2, 'val_accuracy', True)
        >>> search.best_model(data).frozen_blocks_ in (2, 4)
        True
    """

    def __init__(self, extractor=None, *, extractors=None, space=None, tuner="random", max_trials=10, objective=None,
                 epochs=20, patience=3, directory="tfxfer_search", project_name="search", overwrite=False, seed=0,
                 cache=True, strategy=None, extractor_options=None, probe_score="linear", probe_margin=0.05,
                 worker_timeout=1800, verbose=1, **tuner_options):
        if (extractor is None) == (extractors is None):
            raise ValueError("Pass extractor= (one extractor) or extractors= (a list, to choose among them), not "
                             f"{'both' if extractor is not None else 'neither'}.")
        if extractors is not None:
            extractors = check_probe_rule(extractors, probe_score, probe_margin)
            if space is not None and space.frozen_blocks is not None:
                raise ValueError("With extractors=, the probe chooses each extractor's freeze depths: leave "
                                 "SearchSpace(frozen_blocks=) out.")
        if tuner not in TUNERS:
            raise ValueError(f"tuner must be one of {sorted(TUNERS)}; got {tuner!r}.")
        if not isinstance(max_trials, int) or max_trials < 1:
            raise ValueError(f"max_trials must be a whole number >= 1; got {max_trials!r}.")
        if not str(project_name).strip() or os.path.normpath(str(project_name)) in (".", "..") or \
                os.sep in str(project_name):
            raise ValueError(f"project_name must name a folder inside directory (e.g. 'ants'); got {project_name!r}.")
        self.extractor = extractor
        self.extractors = extractors
        self.probe_score = probe_score
        self.probe_margin = probe_margin
        self.space = space or SearchSpace()
        self.tuner = tuner
        self.max_trials = max_trials
        self.objective = objective
        self.epochs = epochs
        self.patience = patience
        self.directory = str(directory)
        self.project_name = project_name
        self.overwrite = overwrite
        self.seed = seed
        self.cache = cache
        self.strategy = strategy
        self.extractor_options = extractor_options
        self.worker_timeout = worker_timeout
        self.verbose = verbose
        self.tuner_options = tuner_options

    @property
    def project_dir(self):
        """The folder of this search's trials and oracle state."""
        return os.path.join(self.directory, self.project_name)

    def _tuner(self, data, retraining=False):
        check_own_folder(self.project_dir, self.overwrite)  # before anything loads: a refusal takes no model time
        cache = FeatureCache(os.path.join(self.project_dir, "feature_cache"), progress=bool(self.verbose)) \
            if self.cache else False
        hypermodel = TransferHyperModel(self.extractor if self.extractors is None else self.extractors, data,
                                        self.space, epochs=self.epochs, patience=self.patience, cache=cache,
                                        strategy=self.strategy, extractor_options=self.extractor_options,
                                        verbose=0 if self.verbose < 2 else 1, seed=self.seed)
        self.hypermodel_ = hypermodel
        recorded = {} if self.overwrite else search_record(self.directory, self.project_name)  # read once
        if self.extractors is not None:
            if isinstance(recorded.get("extractor"), list):
                hypermodel.follow_record(recorded["extractor"], recorded.get("extractor_weights") or [])
            hypermodel.candidates = self._candidates(hypermodel, data, recorded)
        self._check_same_search(data, recorded, retraining)
        hypermodel.digest = search_digest(self.identity_)  # for the workers to check theirs against
        state = os.path.join(self.project_dir, "oracle.json")
        try:
            saved = None if self.overwrite or not os.path.isfile(state) else read_json(state)
            self.tuner_ = self._make_tuner(hypermodel, data.task, say=not retraining)
        except json.JSONDecodeError:
            damaged = [path for path in glob.glob(os.path.join(self.project_dir, "*.json")) +
                       glob.glob(os.path.join(self.project_dir, "trial_*", "trial.json")) if not readable_json(path)]
            raise ValueError(
                f"Cannot resume the search in {self.project_dir}: {', '.join(damaged) or 'its state'} is damaged "
                "(a process was killed while Keras Tuner wrote it). Restore the file, or start afresh with "
                "overwrite=True, which deletes the earlier trials."
            ) from None
        if saved is not None and isinstance(self.tuner_.oracle, kt.Oracle):  # it was reloaded here, not on a chief
            self.tuner_.oracle.resume_trials_out(saved["ongoing_trials"] if _compat.is_chief() else {})
        if _compat.is_worker():  # its oracle is a client of the chief's
            patient_workers(self.tuner_.oracle)
            check_chiefs_search(self.tuner_.oracle, hypermodel.digest)
        return self.tuner_

    def _candidates(self, hypermodel, data, stored):
        """The (extractor, freeze depth) candidates: the stored ones on a resume, else the probe's choice."""
        if "candidates" in stored:
            return stored["candidates"]  # a resume: the identity check below says if anything else changed
        if self.verbose:
            print(f"Probing {len(hypermodel.members)} extractors at every cut...")
        tables = []
        for key, member in hypermodel.members.items():  # each named as its trials name it
            tables.append(probe(data, [member.extractor], scores=(self.probe_score,), rank_by=self.probe_score))
            tables[-1]["extractor"] = key
        self.probe_ = pd.concat(tables).sort_values(self.probe_score, ascending=False, kind="stable")
        self.probe_ = self.probe_.reset_index(drop=True)
        candidates = choose_candidates(self.probe_, hypermodel.n_blocks, score=self.probe_score,
                                       margin=self.probe_margin)
        os.makedirs(self.project_dir, exist_ok=True)
        self.probe_.to_csv(os.path.join(self.project_dir, "probe.csv"), index=False)
        return candidates

    def _identity(self, data):
        """What defines this search: a resumed search must match it."""
        hypermodel = self.hypermodel_
        several = self.extractors is not None
        names, members = list(hypermodel.members), list(hypermodel.members.values())
        identity = {  # sources and options as `from_folder` loads them again, paths absolute
            "tuner": self.tuner, "extractor": names if several else names[0],
            "extractor_sources": [member.source for member in members] if several else members[0].source,
            "extractor_options": [member.options for member in members] if several else members[0].options,
            "extractor_weights": hypermodel.fingerprint, "scoring": SCORING, "digest": DIGEST,
            "image_size": [member.extractor.image_size for member in members],
            "n_blocks": hypermodel.n_blocks if several else hypermodel.extractor.n_blocks, "data": data_identity(data),
            "space": dataclasses.asdict(self.space),
            "epochs": self.epochs, "patience": self.patience, "seed": self.seed}
        if several:
            probe_rule = {"score": self.probe_score, "margin": self.probe_margin}
            identity.update(candidates=hypermodel.candidates, probe=probe_rule)
        return json.loads(json.dumps(identity))

    def _check_same_search(self, data, stored, retraining=False):
        """Refuses to resume a search, or retrain its best trial, with another extractor, data set, task, space or
        settings."""
        identity = self.identity_ = self._identity(data)  # read once: it hashes every file's name and size
        if "extractor_weights" not in stored:
            return
        differences = record_differences(stored, identity, resuming=not retraining)
        if differences and retraining:
            raise ValueError(f"Cannot retrain the best trial of the search in {self.project_dir}: it was run with "
                             f"{'; '.join(differences)}. A trial retrains as it ran: give the data and extractor "
                             "that it ran with.")
        if differences:
            raise ValueError(
                f"Cannot resume the search in {self.project_dir}: it was run with {'; '.join(differences)}. Its trials "
                "would be mixed with this one's. Start afresh there with overwrite=True, which deletes its trials, or "
                "give this search another project_name= or directory=."
            )

    @classmethod
    def from_folder(cls, folder, *, extractor=None, **options):
        """The search stored in `folder` (`directory/project_name`), with the extractor, space and settings it ran
        with, to resume it or to retrain its best trial.

        Args:
            folder: The search's folder.
            extractor: The extractor to use instead of the recorded source (e.g. the same model at another path;
                its weights must be the recorded ones).
            **options: Further `TransferSearch` arguments (`verbose`, `strategy`...).

        Raises:
            FileNotFoundError: `folder` holds no search.

        Example:
            >>> again = TransferSearch.from_folder(search.project_dir, verbose=0)
            >>> again.space == search.space and again.epochs == search.epochs
            True
        """
        directory, project_name = os.path.split(os.path.normpath(folder))
        record = search_record(directory or ".", project_name)
        if "space" not in record:
            raise FileNotFoundError(f"{folder} is not a tfxfer search folder (no {SEARCH_FILE}); pass the directory "
                                    "and project_name of a TransferSearch (the --dir of a `tfxfer tune` run).")
        settings = {"tuner": record["tuner"], "epochs": record.get("epochs", 20), "patience": record.get("patience", 3),
                    "seed": record.get("seed", 0), "extractor_options": record.get("extractor_options") or None,
                    "space": SearchSpace(**{key: tuple(value) if isinstance(value, list) and key in _RANGES else value
                                            for key, value in stored_space(record).items()}), **options}
        if isinstance(record["extractor"], list):
            if extractor is not None:
                raise ValueError(f"{folder} is a search across {len(record['extractor'])} extractors, which it "
                                 "loads from where it found them: leave extractor= out (it gives a search of one "
                                 "extractor where that one is now).")
            probed = record.get("probe", {})
            options = settings.pop("extractor_options") or [{}] * len(record["extractor"])
            # Recorded since 2026-12-07; before, a member's name is its source with its options after it.
            sources = record.get("extractor_sources") or [name.removesuffix(extractor_key("", option)) if option
                                                          else name for name, option in zip(record["extractor"],
                                                                                            options)]
            return cls(extractors=[(source, option or {}) for source, option in zip(sources, options)],
                       directory=directory or ".", project_name=project_name,
                       probe_score=probed.get("score", "linear"), probe_margin=probed.get("margin", 0.05),
                       **settings)
        return cls(extractor if extractor is not None else record.get("extractor_sources", record["extractor"]),
                   directory=directory or ".", project_name=project_name, **settings)

    def _make_tuner(self, hypermodel, task, say=True):
        """Keras Tuner's tuner for `self.tuner`, over tfxfer's guarded oracle; `tuner_options` go to whichever of the
        two takes them."""
        oracle_class = TUNERS[self.tuner][0]
        objective = self.objective or kt.Objective(task.objective.name, task.objective.direction)
        # Keras Tuner draws a random seed for a falsy one (`seed or random.randint(...)`): 0 must stay a fixed seed.
        oracle_options = dict(objective=objective, seed=self.seed if self.seed else 2**31 - 1)
        if self.tuner == "hyperband":
            oracle_options["max_epochs"] = self.epochs
        else:
            oracle_options["max_trials"] = self.max_trials
        tuner_options = dict(directory=self.directory, project_name=self.project_name, overwrite=self.overwrite)
        keras_tuners = next(c for c in oracle_class.__mro__ if c.__module__.startswith("keras_tuner"))  # not _Guarded
        takes = inspect.signature(keras_tuners.__init__).parameters
        for name, value in self.tuner_options.items():
            (oracle_options if name in takes else tuner_options)[name] = value
        return make_tuner(self.tuner, oracle_options, hypermodel, tuner_options, say_resumed=say and self.verbose)

    def search(self, data, callbacks=None):
        """Runs (or resumes) the search on `data` and returns its results table.

        Args:
            data: A `DataSplits` with a validation split.
            callbacks: Keras callbacks for every trial's training (they see the whole model).

        Returns:
            A DataFrame, one row per trial, best first (see `search_results`).
        """
        if getattr(data, "validation", None) is None:
            raise ValueError("A search needs a validation split to score trials: load the data with "
                             "validation_split > 0 or a val/ folder.")
        tuner = self._tuner(data)
        objective = tuner.oracle.objective
        write_json(os.path.join(self.project_dir, SEARCH_FILE), {
            "objective": objective.name, "direction": objective.direction, **self.identity_})
        started = time.perf_counter()
        chief = _compat.is_chief()
        if chief and self.worker_timeout:
            Watchdog(tuner.oracle, self.worker_timeout).start()
        if chief and tuner.oracle.has_ended():
            answer_late_workers(tuner.oracle)
        else:
            tuner.search(callbacks=callbacks or [], verbose=self.verbose)
        self.search_seconds_ = time.perf_counter() - started
        for member in self.hypermodel_.members.values():  # an Extractor passed in leaves with its pretrained weights
            member.restore()
        if not _compat.is_worker():  # a worker's oracle is the chief's, over the network
            report_failed_trials(tuner.oracle, self.project_dir)
        self.best_hyperparameters_ = best_values(tuner)
        return self.results()

    def results(self):
        """The results table, rebuilt from the project folder (works for a finished, killed or running search)."""
        return search_results(self.directory, self.project_name)

    def best_model(self, data, *, retrain=True):
        """The best trial's model.

        Args:
            data: The `DataSplits` the search ran on (other data is refused).
            retrain: Train the best configuration again from the pretrained weights (cheap on cached
                activations) and return it fitted; False returns the unfitted `TransferModel`.

        Returns:
            A `TransferModel` with the best hyperparameters. It trains the search's extractor in place: a second
            call retrains it, so export (or predict with) one model before asking for the next.
        """
        ran_on = search_record(self.directory, self.project_name).get("data")
        if ran_on and ran_on.get("examples") != data_identity(data)["examples"]:
            raise ValueError(f"the search in {self.project_dir} ran on other data ({sizes_text(ran_on.get('sizes'))} "
                             "examples); pass the data it ran on (the same files split otherwise, by seed= or "
                             "validation_split=, are other data).")
        tuner = getattr(self, "tuner_", None) or self._tuner(data, retraining=True)
        best = tuner.get_best_hyperparameters(1)
        if not best:
            raise ValueError(f"No completed trial in {self.project_dir}; run search() first.")
        self.hypermodel_.build(best[0])
        model = self.hypermodel_._trial
        return model.train(self.hypermodel_._member.data) if retrain else model


#: The `SearchSpace` fields whose `(low, high)` ranges JSON stores as lists.
_RANGES = {field.name for field in dataclasses.fields(SearchSpace) if isinstance(field.default, tuple)}

