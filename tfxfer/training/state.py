"""What a fitted `TransferModel` keeps when a later call on it fails, or only looks (the learning-rate finder)."""

import contextlib

#: The attributes that `TransferModel.build` replaces.
BUILT = ("model_", "extractor_", "task_", "phases_", "precision_")


@contextlib.contextmanager
def fitted_state_kept(model, always=False):
    """Puts back `model`'s built attributes (`BUILT`) and its extractor's frozen blocks if the block raises, or
    whatever happens with `always`; a model that was never built is left unbuilt, its `Extractor` (if it was given
    one) frozen as it was, except after Ctrl-C, which leaves a first fit's model as trained so far.

    A second `fit` refused for its data would otherwise leave a fitted model with a new, untrained head, and the
    finder would throw the trained one away.

    Example:
        >>> class Fitted:
        ...     model_ = "trained"
        >>> fitted = Fitted()
        >>> with fitted_state_kept(fitted, always=True):
        ...     fitted.model_ = "fresh"
        >>> fitted.model_
        'trained'
    """
    kept = {name: getattr(model, name) for name in BUILT if hasattr(model, name)}
    extractor = kept.get("extractor_", getattr(model, "extractor", None))
    frozen = getattr(extractor, "frozen_blocks", None)
    restore, unbuild = True, True
    try:
        yield
        restore = always
    except Exception:
        raise
    except BaseException:  # Ctrl-C: a first fit keeps what it has trained so far, as Keras' own fit does
        unbuild = False
        raise
    finally:
        if restore and (kept or unbuild):
            for name in BUILT:
                if name in kept:
                    setattr(model, name, kept[name])
                elif hasattr(model, name):
                    delattr(model, name)
            if frozen is not None:
                extractor.freeze(frozen)
