"""The noise of an effect between two arms, by source, and the COCO prior.

An arm's metric (AP points) on a validation set of ``N`` images, trained
with seed ``s``, is modelled as::

    Y[arm, s] = m[arm] + u[arm] + r[arm, s] + v[arm, s]

- ``u``: which images the validation set holds (image sampling). Every run
  of an arm is evaluated on the same images, so ``u`` is shared by its
  seeds; what the two arms share of it cancels in a paired difference. The
  variance of ``u[a] - u[b]`` is the **image term** ``image_sd**2``
  (``~ 1/N``).
- ``r``: the **run-wide seed offset** (``run_sd``): a training seed makes
  the whole model a little better or worse on every image alike. Resampling
  images never sees it.
- ``v``: the **seed x image** part (``seed_image_sd``): where on the images
  a seed's model is better or worse. It averages out over images
  (``~ 1/N``) and an image bootstrap of one run does see it.

A run's total seed SD (what public multi-run reports measure) is
``sqrt(run_sd**2 + seed_image_sd**2)``. The effect's variance with ``n_a``
and ``n_b`` seeds per arm is::

    Var = image_sd**2 + (1/n_a + 1/n_b) * (run_sd**2 + seed_image_sd**2)

This is the decomposition of Bouthillier et al., "Accounting for Variance
in Machine Learning Benchmarks" (MLSys 2021): data sampling and the
learning procedure's seeds as independent sources of a benchmark's
variance, with their interaction.
"""
import dataclasses
import math

PRIOR_IMAGES = 5000

# Run-to-run spread of COCO training, as the public threads state it (AP
# points; SD = range / 1.128 for two runs):
SEED_SD_SOURCES = (
    ('open-mmlab/mmdetection#3624', '"the gap is usually less than 0.2 mAP"'
     ' on COCO'),
    ('open-mmlab/mmdetection#3496', '"the fluctuation is very little (less '
     'than 0.3 mAP)"'),
    ('facebookresearch/Mask2Former#46', 'three R-50 retrains: AP 43.5 / 43.2'
     ' / 43.3 and APs 23.0 / 22.7 / ~22.8, both SD ~0.15 (the 0.4-0.7 there '
     'are deficits against the paper, a bias, not spread between runs)'),
    ('facebookresearch/detectron2#457', 'RetinaNet R-50 over several runs: '
     '35.8-36.3 box AP'),
    ('facebookresearch/moco#39', '"a gap of 0.3 AP is within a reasonable '
     'range of random variation in COCO"'),
    ('PeizeSun/SparseR-CNN#62', '"+-0.3"'),
    ('implus/GFocal#8', '"~0.1 AP is mainly the randomness"'),
)
# The prior takes the upper end of those (0.3 AP) for every metric: the
# only source with the size ranges (Mask2Former#46) shows APs spreading as
# AP does, so APs/APm/APl get no larger seed SD.
PRIOR_SEED_SD = 0.3
# How the prior's seed variance splits: all run-wide unless a pilot
# (--pilot) measures the seed x image part. All run-wide is the cautious
# choice for a 1-seed verdict: its image bootstrap already sees the seed x
# image part, and the prior adds the rest on top.
PRIOR_RUN_FRACTION = 1.0
# Image term of a paired difference at 5000 images: no public multi-run
# source gives it. An assumption of the order single-arm bootstrap
# intervals on COCO val show (a few tenths of an AP), not reduced for
# pairing; each size range holds about a third of the objects, so its image
# term is about sqrt(3) ~ 2x larger (a property of fewer objects, not of
# training). A pilot with saved detections replaces both.
PRIOR_IMAGE_SD = {'all': 0.2, 'size': 0.4}


@dataclasses.dataclass(frozen=True)
class Noise:
    """Noise of one comparison, in the metric's display units (AP points).

    Attributes:
        image_sd: SD of the paired arm difference from image sampling, at
            ``n_images`` images.
        run_sd: SD of the run-wide seed offset of one run.
        seed_image_sd: SD of one run's metric from the seed x image part,
            at ``n_images`` images.
        n_images: Validation images the two image terms refer to.
        source: Where each term comes from, in words.
    """

    image_sd: float
    run_sd: float
    seed_image_sd: float
    n_images: int
    source: str

    @property
    def seed_sd(self) -> float:
        """One run's total SD over training seeds."""
        return math.hypot(self.run_sd, self.seed_image_sd)

    def at_images(self, n_images: int) -> 'Noise':
        """The same noise on another number of validation images: the two
        image terms scale as ``1/sqrt(N)``, the run-wide offset does not."""
        if not n_images or n_images == self.n_images:
            return self
        k = math.sqrt(self.n_images / n_images)
        return dataclasses.replace(
            self, image_sd=self.image_sd * k,
            seed_image_sd=self.seed_image_sd * k, n_images=n_images,
            source=f'{self.source}; image terms scaled from '
            f'{self.n_images} to {n_images} images')

    def variance(self, n_a: int, n_b: int) -> float:
        """Variance of the effect with ``n_a`` and ``n_b`` seeds."""
        return self.image_sd ** 2 + (1 / n_a + 1 / n_b) * self.seed_sd ** 2

    def describe(self) -> str:
        return (f'seed SD {self.seed_sd:.2f} AP (run-wide '
                f'{self.run_sd:.2f}, seed x image {self.seed_image_sd:.2f}),'
                f' image SD {self.image_sd:.2f} AP at {self.n_images} '
                f'images ({self.source})')


def metric_class(metric: str) -> str:
    """``size`` for APs/APm/APl, else ``all``."""
    return 'size' if metric.endswith(('APs', 'APm', 'APl')) else 'all'


def prior(metric: str, n_images: int = PRIOR_IMAGES,
          seed_sd: float = PRIOR_SEED_SD,
          run_fraction: float = PRIOR_RUN_FRACTION) -> Noise:
    """The COCO prior for ``metric`` at ``n_images`` validation images.

    Args:
        metric: A results-table AP column.
        n_images: Validation images.
        seed_sd: One run's total seed SD, AP points.
        run_fraction: Share of the seed variance that is run-wide.
    """
    run_var = run_fraction * seed_sd ** 2
    source = (f'COCO prior: seed SD {seed_sd:g} AP from '
              + ', '.join(s for s, _ in SEED_SD_SOURCES[:3])
              + ' and others (uncertainty/noise.py), '
              + ('all run-wide' if run_fraction == 1 else
                 f'{run_fraction:.0%} of its variance run-wide')
              + f'; image SD {PRIOR_IMAGE_SD[metric_class(metric)]:g} AP '
              f'at {PRIOR_IMAGES} images, assumed')
    return Noise(PRIOR_IMAGE_SD[metric_class(metric)], math.sqrt(run_var),
                 math.sqrt(seed_sd ** 2 - run_var), PRIOR_IMAGES,
                 source).at_images(n_images)
