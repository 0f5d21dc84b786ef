"""Experiment protocols: the MCRAGE paper's experiment, a generic one for any table, and the
FairSynth experiment on longitudinal EHR.

A protocol turns one seed into a split (base training set, test set), builds each
arm's training set from the same base set, trains the same downstream model on the
same features for every arm and scores it on the same real test set.
"""

from equisynth.evaluation.protocols._base import ProtocolBase, SeedResult, Split, check_arms
from equisynth.evaluation.protocols.fairsynth import FAIRSYNTH_ARMS, FairSynthProtocol
from equisynth.evaluation.protocols.generic import GENERIC_ARMS, GenericProtocol
from equisynth.evaluation.protocols.mcrage import MCRAGE_ARMS, MCRAGEProtocol
from equisynth.evaluation.protocols.selection import (
    CheckpointSelectedGenerator,
    fill_to_max_conditions,
)

__all__ = [
    "FAIRSYNTH_ARMS",
    "GENERIC_ARMS",
    "MCRAGE_ARMS",
    "CheckpointSelectedGenerator",
    "FairSynthProtocol",
    "GenericProtocol",
    "MCRAGEProtocol",
    "ProtocolBase",
    "SeedResult",
    "Split",
    "check_arms",
    "fill_to_max_conditions",
]
