"""Worker of the EHR DDP test: ``torchrun ... ehr_ddp_worker.py OUT BATCH EPOCHS CKPT``."""

from __future__ import annotations

import sys

from ehr_support import SMALL, make_task

from equisynth.diffusion.distributed import current_context, init_distributed, shutdown_distributed
from equisynth.generators.ehr import HALOGenerator


def main() -> None:
    out, batch, epochs, ckpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    init_distributed("cpu")
    gen = HALOGenerator(**{**SMALL, "batch_size": batch, "n_epochs": epochs}).fit(
        make_task(), checkpoint_dir=ckpt
    )
    if current_context().is_main:
        gen.save(out)
    shutdown_distributed()


if __name__ == "__main__":
    main()
