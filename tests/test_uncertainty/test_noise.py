"""The COCO prior and how the noise terms scale with the image count."""
import pytest

from uncertainty.noise import SEED_SD_SOURCES, Noise, prior


def test_prior_has_no_size_doubling_of_the_seed_sd():
    # Mask2Former#46 shows APs spreading as AP does: one seed SD for all.
    assert prior('mask_APs').seed_sd == prior('mask_AP').seed_sd == 0.3
    # Fewer objects per size range: a larger image term (an assumption).
    assert prior('mask_APs').image_sd == 2 * prior('mask_AP').image_sd
    assert any('Mask2Former#46' in s for s, _ in SEED_SD_SOURCES)


def test_prior_split_and_its_words():
    n = prior('box_AP', run_fraction=0.5)
    assert n.run_sd ** 2 == pytest.approx(0.045)
    assert n.seed_image_sd ** 2 == pytest.approx(0.045)
    assert n.seed_sd == pytest.approx(0.3)
    assert '50% of its variance run-wide' in n.source
    assert 'all run-wide' in prior('box_AP').source


def test_image_terms_scale_with_images_and_the_run_wide_offset_does_not():
    n = Noise(0.2, 0.3, 0.1, 5000, 'x').at_images(1250)
    assert n.image_sd == pytest.approx(0.4)
    assert n.seed_image_sd == pytest.approx(0.2)
    assert n.run_sd == 0.3
    assert n.variance(2, 2) == pytest.approx(0.16 + (0.09 + 0.04))
