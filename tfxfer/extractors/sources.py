"""What kind of source a string names, told without loading anything: a `keras.applications` name, a TF Hub handle,
an archive, or a path."""

import os


def is_handle(source):
    """Whether `source` is an http(s) handle that tensorflow_hub downloads and caches.

    Example:
        >>> is_handle("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"), is_handle("./m")
        (True, False)
    """
    return str(source).startswith(("http://", "https://"))


def looks_like_path(source):
    """Whether a string names a path rather than a model by name: it holds a separator, starts with `.`, or exists.

    Example:
        >>> looks_like_path("./resnet_50"), looks_like_path("resnet_50_imagenet")
        (True, False)
    """
    source = os.fspath(source)
    return "/" in source or os.sep in source or source.startswith(".") or os.path.exists(source)


def is_application_name(source):
    """Whether `load_extractor` reads `source` as a `keras.applications` name: not a path or handle, capitalised.

    Example:
        >>> is_application_name("MobileNetV2"), is_application_name("./MobileNetV2"), is_application_name("https://x")
        (True, False, False)
    """
    if not isinstance(source, (str, os.PathLike)):
        return False
    return not looks_like_path(source) and os.fspath(source)[:1].isupper()

