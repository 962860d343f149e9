"""Update stage 'momentum': MI-FGSM, G = mu * G + norm(d), x = clip(x + alpha * sign(G)).

With mu = 0 it is I-FGSM (sign(norm(d)) = sign(d)); under svre with mu = 0 it is the
authors' SVRE-I-FGSM outer step x_t + alpha * sign(G_in).
"""
import tensorflow as tf

from svrens_tf.attacks import updates


def initial_state(x0, cfg):
    return {'velocity': tf.zeros_like(x0)}


def update(x, d, state, settings, box, cfg):
    velocity = updates.accumulate(state['velocity'], updates.normalize(d), settings['momentum'])
    return updates.sign_step(x, velocity, settings['step'], box), {**state, 'velocity': velocity}
