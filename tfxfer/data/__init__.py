"""Data for transfer learning: folders, CSV/TSV files and DataFrames to `tf.data` pipelines and a task description.

`load_images` and `load_text` return a `DataSplits` with `.train`, `.validation`, `.test` pipelines, the `Task`
(type, class names, outputs, label encoding, class weights, and what follows from the type: loss, metrics,
objective, served outputs), per-split counts and the list of `Skipped` items.
"""

from tfxfer import _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "datasplits": ["DataSplits"],
    "decoding": ["IMAGE_EXTENSIONS", "decode_image", "find_undecodable", "resize_and_scale"],
    "errors": ["DataError", "Skipped"],
    "images": ["default_augmentation", "load_images"],
    "stratify": ["stratified_split"],
    "tables": ["read_table"],
    "task": ["Task"],
    "task_types": ["Objective"],
    "text": ["load_text"],
})
