"""Downstream prediction models trained on real (+ synthetic) patients and scored on real ones.

:class:`~equisynth.downstream.sequence.SequenceClassifier` predicts a patient-level label of a
:class:`~equisynth.data.tasks.SequenceTask` from the patient's visits of codes (and, as an
explicit option, the demographics). It is the model of the FairSynth feedback loop and of every
arm of the FairSynth experiment.
"""

from equisynth.downstream.sequence import SequenceClassifier

__all__ = ["SequenceClassifier"]
