"""The output convention of a classifier callable, shared by attacks, evaluation and defenses."""


def split_outputs(output):
    """(logits, aux_logits or None) from a logits tensor, a (logits, aux_logits) pair, or an
    object with `.logits` (and optionally `.aux_logits`), such as a zoo model's ModelOutput."""
    if hasattr(output, 'logits'):
        return output.logits, getattr(output, 'aux_logits', None)
    if isinstance(output, (tuple, list)):
        logits, aux_logits = output
        return logits, aux_logits
    return output, None
