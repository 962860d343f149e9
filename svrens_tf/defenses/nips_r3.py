"""NIPS-r3 (anlthms, 3rd place NIPS17 defense): a weighted logit ensemble over transformed inputs.

As its `defense_mmd.py` runs it, per image: a JPEG quality-50 transcode; for ens_adv IncRes-v2
a random shear/shift/zoom/rotation (nearest, zero fill) at weight 0.7 plus the transcode at 0.1;
for adv Inc-v3 Gaussian noise (std 4/255 in [-1,1] space), a random 2-3 degree rotation and a
1.05-1.1 zoom at weight 0.2 plus the transcode at 0.1; a rotated, 0.75-0.8 zoomed 224 crop of
the transcode for VGG-16 (its own preprocessing: pixels minus the VGG mean; 1000 classes) at
weight 0.1 and for ResNet-v2-152, fed the same mean-subtracted pixels (the submission's input,
kept), at weight 0.05. Logits exclude the background class; aux logits of the Inception members
are summed with the same weights and added at 0.8. Draws follow the submission's order from
one seeded RandomState.
"""
import numpy as np
import scipy.ndimage

from svrens_tf.defenses import base, jpeg
from svrens_tf.models.vgg_16 import VGG_MEAN

TRANSCODE_QUALITY = 50
NOISE_STD = 4 / 255.0
MIN_ANGLE, MAX_ANGLE = 2, 3
INC_ZOOM = (1.05, 1.1)
RES_ZOOM = (0.75, 0.8)
RES_SIDE = 224
INCRES, INC, VGG, RES = 'ens_adv_incres_v2', 'adv_inc_v3', 'vgg_16', 'res_v2_152'
WEIGHTS = {INCRES: (0.7, 0.1), INC: (0.2, 0.1), VGG: (0.1,), RES: (0.05,)}
AUX_WEIGHT = 0.8


def _jitter(value, rng):
    """value scaled by a random 0.95..1.05 in steps of 0.01."""
    return value * rng.randint(95, 106) / 100.0


def _about_center(matrix, h, w):
    offset = np.array([[1, 0, h / 2 + 0.5], [0, 1, w / 2 + 0.5], [0, 0, 1]])
    reset = np.array([[1, 0, -(h / 2 + 0.5)], [0, 1, -(w / 2 + 0.5)], [0, 0, 1]])
    return offset @ matrix @ reset


def _apply_affine(image, matrix):
    """Nearest-neighbour affine map of each channel, zero outside."""
    return np.stack([scipy.ndimage.affine_transform(image[..., c], matrix[:2, :2], matrix[:2, 2],
                                                    order=0, mode='constant', cval=0.0)
                     for c in range(image.shape[-1])], axis=-1)


def affine_distort(image, rng):
    """Shear, shift, zoom and rotation, each jittered by +-5% (the IncRes-v2 input)."""
    h, w = image.shape[:2]
    shear, theta = _jitter(np.pi / 128, rng), _jitter(-np.pi / 128, rng)
    tx, ty = int(_jitter(w * 0.02, rng)), int(_jitter(h * 0.02, rng))
    zx, zy = _jitter(0.95, rng), _jitter(0.95, rng)
    maps = [_about_center(np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]]), h, w),
            np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], float),
            _about_center(np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]]), h, w),
            _about_center(np.array([[np.cos(theta), -np.sin(theta), 0],
                                    [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]), h, w)]
    for matrix in maps:
        image = _apply_affine(image, matrix)
    return image


def rotate_zoom_crop(image, rng, zoom_range, out_side):
    """Rotate by +-2..3 degrees (grown canvas), zoom each axis in zoom_range, centre crop."""
    angle = rng.randint(MIN_ANGLE, MAX_ANGLE + 1)
    if rng.randint(2) == 0:
        angle = -angle
    rotated = scipy.ndimage.rotate(image, angle, reshape=True)
    zoom = (rng.uniform(*zoom_range), rng.uniform(*zoom_range), 1)
    zoomed = scipy.ndimage.zoom(rotated, zoom)
    top, left = [(zoomed.shape[i] - out_side) // 2 for i in range(2)]
    return zoomed[top:top + out_side, left:left + out_side]


def noise_rotate_zoom(image, rng):
    """Gaussian noise, clip, then rotate/zoom/crop (the Inc-v3 input, [-1,1] space)."""
    noisy = np.clip(image + rng.randn(*image.shape) * NOISE_STD, -1, 1)
    return rotate_zoom_crop(noisy, rng, INC_ZOOM, image.shape[0])


def member_inputs(image_uint8, rng):
    """(IncRes-v2 input, Inc-v3 input, transcode, 224 crop in pixels) for one image, in draw
    order; the crop feeds VGG-16 and ResNet-v2-152."""
    transcoded = jpeg.jpeg_round_trip(image_uint8[None], TRANSCODE_QUALITY,
                                      'INTEGER_ACCURATE')[0].astype(np.float64)
    crop = rotate_zoom_crop(transcoded, rng, RES_ZOOM, RES_SIDE)
    signed = base.to_signed(image_uint8.astype(np.float64) / 255.0)
    incres_input = affine_distort(signed, rng)
    inc_input = noise_rotate_zoom(signed, rng)
    return incres_input, inc_input, base.to_signed(transcoded / 255.0), crop


class NipsR3(base.Defense):
    name = 'nips_r3'

    @classmethod
    def zoo_models(cls, settings):
        return [INCRES, INC, VGG, RES]

    def __init__(self, seed=0, checkpoint_dir=None, load_model=base.load_zoo_model):
        super().__init__((INCRES, INC, VGG, RES))
        self.members = {name: base.Classifier(load_model(name, checkpoint_dir))
                        for name in self.classifiers}
        self.rng = np.random.RandomState(seed)

    def predict(self, images):
        incres_in, inc_in, transcoded, crop = (
            np.stack(column).astype(np.float32)
            for column in zip(*(member_inputs(image, self.rng) for image in images)))
        b = len(images)
        logits = 0.0
        aux = 0.0
        for name, pair in ((INCRES, incres_in), (INC, inc_in)):
            member_logits, member_aux = self.members[name](np.concatenate([pair, transcoded]))
            for part, weight in enumerate(WEIGHTS[name]):
                rows = slice(part * b, (part + 1) * b)
                logits = logits + weight * base.class_scores(member_logits[rows])
                if member_aux is not None:
                    aux = aux + weight * base.class_scores(member_aux[rows])
        vgg_logits, _ = self.members[VGG](base.to_signed(crop / 255.0))  # zoo VGG: [-1,1] in
        res_logits, _ = self.members[RES](crop - np.float32(VGG_MEAN))
        logits = (logits + WEIGHTS[VGG][0] * base.class_scores(vgg_logits)
                  + WEIGHTS[RES][0] * base.class_scores(res_logits) + AUX_WEIGHT * aux)
        return np.argmax(logits, axis=-1) + 1
