"""The attack losses: single-model J_k and the ensemble fusions (Eq. 1-3).

Every loss is a batch mean of cross-entropies (as `tf.losses.softmax_cross_entropy` in the
authors' code) plus `aux_weight` times the same loss on the aux logits of the models that have
them.  Targeted attacks negate the loss, so the attack loop always ascends.
"""
import math

import tensorflow as tf


def cross_entropy(logits, labels):
    """Batch-mean softmax cross-entropy of integer `labels`."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))


def _fused_logits(logits_list, labels):
    return cross_entropy(tf.add_n(logits_list) / len(logits_list), labels)


def _fused_predictions(logits_list, labels):
    """-log of the mean softmax probability of the label, via logsumexp of log-softmaxes."""
    log_probs = tf.stack([tf.nn.log_softmax(l) for l in logits_list])
    log_mean = tf.reduce_logsumexp(log_probs, axis=0) - math.log(len(logits_list))
    return -tf.reduce_mean(tf.gather(log_mean, labels, batch_dims=1))


# Fusions that combine the heads before the cross-entropy; 'loss' averages the J_k instead.
HEAD_FUSIONS = {'logits': _fused_logits, 'predictions': _fused_predictions}


def ensemble_loss(outputs, labels, fusion, aux_weight, targeted):
    """Ensemble loss of a list of (logits, aux) pairs under `fusion`, aux heads weighted.

    With fusion 'loss' this is the mean of the single-model losses J_k; with 'logits' it is
    the authors' CE(mean logits) + aux_weight * CE(mean aux logits of the aux models).
    """
    if fusion == 'loss':
        loss = tf.add_n([_single(out, labels, aux_weight) for out in outputs]) / len(outputs)
    else:
        fuse = HEAD_FUSIONS[fusion]
        loss = fuse([logits for logits, _ in outputs], labels)
        aux = [aux for _, aux in outputs if aux is not None]
        if aux:
            loss += aux_weight * fuse(aux, labels)
    return -loss if targeted else loss


def _single(output, labels, aux_weight):
    logits, aux = output
    loss = cross_entropy(logits, labels)
    if aux is not None:
        loss += aux_weight * cross_entropy(aux, labels)
    return loss


def single_model_loss(output, labels, aux_weight, targeted):
    """J_k = CE(logits) + aux_weight * CE(aux) (no aux term without an aux head)."""
    loss = _single(output, labels, aux_weight)
    return -loss if targeted else loss
