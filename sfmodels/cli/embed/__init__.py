"""``sfmodels embed``: bulk-embed lines of files into a JSONL file, streaming and resumably.

Each output line is one record ``{id, provider, model, instruction, sha256, text, embedding}``;
lines already embedded (same id, same text) are skipped, so an interrupted run resumes where it
stopped. Memory stays flat however long the input is. Where each part lives:

- :mod:`.command`: the options and the run that ties the parts below together;
- :mod:`.inputs`: checking the FILE and --out paths, reading FILEs into (id, text) records;
- :mod:`.out_file`: the record layout (keys before the vector; float or base64 vectors) and the
  output file they are appended to;
- :mod:`.resume`: scanning what --out already holds, refusing another model's file, and
  choosing the records still to embed; :mod:`.resume_index` is its compact id table;
- :mod:`.pipeline`: batches sent on a thread pool, written in input order as they land;
- :mod:`.progress`: the progress bar; :mod:`.interrupt`: Ctrl-C.
"""

from __future__ import annotations

from .command import DESCRIPTION, add_arguments, run

__all__ = ["DESCRIPTION", "add_arguments", "run"]
