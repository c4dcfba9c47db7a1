"""Small helpers of sklearn-crfsuite's ``utils`` module."""

__all__ = ["flatten"]


def flatten(sequences):
    """The items of a list of sequences, in order, as one list."""
    return [item for sequence in sequences for item in sequence]
