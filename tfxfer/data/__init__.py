"""Data for transfer learning: folders, CSV/TSV files and DataFrames to `tf.data` pipelines and a task description.

`load_images` and `load_text` return a `DataSplits` with `.train`, `.validation`, `.test` pipelines, the `Task`
(type, class names, outputs, label encoding, class weights, and what follows from the type: loss, metrics,
objective, served outputs), per-split counts and the list of `Skipped` items.
"""

from tfxfer.data.datasplits import DataSplits
from tfxfer.data.decoding import IMAGE_EXTENSIONS, decode_image, find_undecodable, resize_and_scale
from tfxfer.data.errors import DataError, Skipped
from tfxfer.data.images import default_augmentation, load_images
from tfxfer.data.stratify import stratified_split
from tfxfer.data.tables import read_table
from tfxfer.data.task import Objective, Task
from tfxfer.data.text import load_text

__all__ = ["DataError", "DataSplits", "IMAGE_EXTENSIONS", "Objective", "Skipped", "Task", "decode_image",
           "default_augmentation", "find_undecodable", "load_images", "load_text", "read_table", "resize_and_scale",
           "stratified_split"]
