"""Negative sources beyond the batch: a memory bank and a FIFO queue."""

from keras_contrastive.negatives.fifo_queue import FifoQueue
from keras_contrastive.negatives.memory_bank import MemoryBank
