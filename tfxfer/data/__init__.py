"""Data for transfer learning: folders, CSV/TSV files and DataFrames to `tf.data` pipelines and a task description.

`load_images` and `load_text` return a `DataSplits` with `.train`, `.validation`, `.test` pipelines, the `Task`
(type, class names, outputs, label encoding, class weights), per-split counts and the list of `Skipped` items.
"""

from tfxfer.data.data_splits import DataSplits
from tfxfer.data.decoding import IMAGE_EXTENSIONS, decode_image, find_undecodable
from tfxfer.data.errors import DataError, Skipped
from tfxfer.data.images import default_augmentation, load_images
from tfxfer.data.splits import stratified_split
from tfxfer.data.tables import read_table
from tfxfer.data.task import Task
from tfxfer.data.text import load_text

__all__ = ["DataError", "DataSplits", "IMAGE_EXTENSIONS", "Skipped", "Task", "decode_image", "default_augmentation",
           "find_undecodable", "load_images", "load_text", "read_table", "stratified_split"]
