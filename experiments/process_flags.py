"""The flags that say where a run trains (not what it is): the processes of a multi-process run.

``scripts/launch.py`` sets the first three for processes on one machine;
``--distributed`` lets JAX find them on a Cloud TPU slice or under SLURM.
``join_processes`` joins the run's other processes (``training/distributed.py``).
"""

from absl import flags
from absl import logging

from experiments.training.processes import distributed

flags.DEFINE_string("coordinator_address", None, "host:port of process 0, which coordinates a "
                    "run over several processes (with --num_processes and --process_id).")
flags.DEFINE_integer("num_processes", None, "Processes that train the run together.")
flags.DEFINE_integer("process_id", None, "This process's number, 0..num_processes-1.")
flags.DEFINE_boolean("distributed", False, "Join the other processes of a Cloud TPU slice or a "
                     "SLURM job (JAX finds the coordinator, count and id itself).")
flags.DEFINE_integer("distributed_timeout", 120,
                     "Seconds to wait for the coordinator and the other processes.")
PROCESS_FLAGS = ("coordinator_address", "num_processes", "process_id", "distributed",
                 "distributed_timeout")
FLAGS = flags.FLAGS


def join_processes() -> None:
  """Joins the run's other processes (if the flags ask for it); only process 0 logs INFO."""
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         FLAGS.distributed_timeout, FLAGS.distributed)
  if not distributed.is_leader():
    logging.set_verbosity(logging.WARNING)
