"""The image maths over a generated corpus: sizes, crops, orientation, colour modes, and every failure's reason."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageChops

from functions.images import imaging
from functions.images.errors import ImageRejected, Reason
from functions.images.imaging import (
    check_size,
    cover_size,
    decode_size,
    medium_size,
    render,
)
from functions.images.models import Limits, Rendered
from tests.functions import images_corpus as corpus

LIMITS = Limits(max_bytes=40 * 1024 * 1024, max_pixels=40_000_000)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


def near(pixel: Any, expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    values = (pixel,) * 3 if isinstance(pixel, int) else pixel[:3]
    return all(abs(a - b) <= tolerance for a, b in zip(values, expected, strict=True))


def reason_of(data: bytes, limits: Limits = LIMITS) -> Reason:
    with pytest.raises(ImageRejected) as caught:
        render(data, limits)
    assert caught.value.message
    return caught.value.reason


def assert_derivatives(rendered: Rendered, medium: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    thumb, med = decoded(rendered.thumbnail.data), decoded(rendered.medium.data)
    assert thumb.size == (rendered.thumbnail.width, rendered.thumbnail.height) == (200, 200)
    assert med.size == (rendered.medium.width, rendered.medium.height) == medium
    return thumb, med


# --- sizes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4000, 3000), (800, 600)),
        ((3000, 4000), (600, 800)),
        ((800, 800), (800, 800)),
        ((640, 480), (640, 480)),  # never upscaled
        ((1, 1), (1, 1)),
        ((10000, 100), (800, 8)),
        ((100000, 10), (800, 1)),  # never below one pixel
    ],
)
def test_medium_fits_inside_800_keeping_aspect_and_never_upscales(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert medium_size(*size) == expected


def test_cover_size_covers_the_thumbnail_box() -> None:
    assert cover_size(4000, 3000) == (267, 200)
    assert cover_size(10000, 100) == (20000, 200)
    assert cover_size(1, 1) == (200, 200)


def test_decode_size_is_what_both_derivatives_need_and_never_more_than_the_original() -> None:
    assert decode_size(6000, 4000) == (800, 533)
    assert decode_size(10000, 100) == (10000, 100)  # the thumbnail needs every row of a panorama
    assert decode_size(300, 200) == (300, 200)


# --- orientation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_before_resizing(orientation: int) -> None:
    rendered = render(corpus.oriented_jpeg(orientation, display=(320, 240)), LIMITS)

    assert (rendered.width, rendered.height) == (320, 240)
    _, medium = assert_derivatives(rendered, (320, 240))
    w, h = medium.size
    assert near(medium.getpixel((20, 20)), corpus.QUADRANT_COLOURS["top_left"])
    assert near(medium.getpixel((w - 20, 20)), corpus.QUADRANT_COLOURS["top_right"])
    assert near(medium.getpixel((20, h - 20)), corpus.QUADRANT_COLOURS["bottom_left"])
    assert near(medium.getpixel((w - 20, h - 20)), corpus.QUADRANT_COLOURS["bottom_right"])


def test_orientation_swaps_reported_dimensions_of_a_large_drafted_jpeg() -> None:
    # Stored 3000x2000 sideways (orientation 6): the upload is shown, and recorded, as 2000x3000.
    shown = corpus.quadrants(2000, 3000)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = corpus.encode(shown.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())

    rendered = render(data, LIMITS)

    assert (rendered.width, rendered.height) == (2000, 3000)
    _, medium = assert_derivatives(rendered, (533, 800))
    assert near(medium.getpixel((10, 10)), corpus.RED)
    assert near(medium.getpixel((522, 789)), corpus.YELLOW)


# --- cover crops ---------------------------------------------------------------------------------------------------


def test_photo_12mp_thumbnail_is_a_centred_crop_and_medium_keeps_aspect() -> None:
    rendered = render(corpus.photo_12mp_with_red_sides(), LIMITS)

    assert (rendered.width, rendered.height, rendered.format) == (4000, 3000, "JPEG")
    thumb, medium = assert_derivatives(rendered, (800, 600))
    # The centred 3000x3000 crop excludes the red 500 px sides; the medium keeps them.
    assert not any(near(thumb.getpixel((x, y)), corpus.RED, 25) for x in (1, 198) for y in (1, 100, 198))
    assert near(medium.getpixel((50, 300)), corpus.RED) and near(medium.getpixel((750, 300)), corpus.RED)


def test_panorama_thumbnail_is_the_centre_upscaled_to_200x200() -> None:
    rendered = render(corpus.panorama_10000x100(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (800, 8))
    for point in ((2, 2), (197, 2), (100, 100), (2, 197), (197, 197)):
        assert near(thumb.getpixel(point), corpus.GREEN), point  # a crop off centre would show red
    assert near(medium.getpixel((10, 4)), corpus.RED) and near(medium.getpixel((400, 4)), corpus.GREEN)


def test_one_pixel_image_gives_a_200x200_thumbnail_and_a_1x1_medium() -> None:
    rendered = render(corpus.one_pixel_png(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (1, 1))
    assert near(thumb.getpixel((100, 100)), corpus.GREEN)
    assert near(medium.getpixel((0, 0)), corpus.GREEN)


# --- colour modes --------------------------------------------------------------------------------------------------


def test_cmyk_jpeg_without_profile_becomes_rgb() -> None:
    rendered = render(corpus.cmyk_jpeg(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (300, 200))
    assert thumb.mode == medium.mode == "RGB"
    assert near(medium.getpixel((150, 100)), (0, 255, 255))  # cyan ink shows as cyan


def test_cmyk_jpeg_is_converted_through_its_embedded_icc_profile() -> None:
    rendered = render(corpus.cmyk_jpeg(corpus.cyan_to_red_cmyk_profile()), LIMITS)

    thumb, medium = assert_derivatives(rendered, (300, 200))
    assert thumb.mode == medium.mode == "RGB"
    r, g, b = medium.getpixel((150, 100))  # type: ignore[misc]
    assert r > g + 60 and r > b + 60, (r, g, b)  # the profile says red; a plain conversion gives cyan


def test_png_alpha_is_flattened_on_white() -> None:
    rendered = render(corpus.rgba_png(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (400, 200))
    assert medium.mode == "RGB"
    assert near(medium.getpixel((50, 100)), (255, 255, 255), 8)  # transparent black shows white
    assert near(medium.getpixel((350, 100)), corpus.BLUE)
    assert near(thumb.getpixel((10, 100)), (255, 255, 255), 8) and near(thumb.getpixel((190, 100)), corpus.BLUE)


def test_grayscale_with_alpha_is_flattened_on_white() -> None:
    rendered = render(corpus.la_png(), LIMITS)

    _, medium = assert_derivatives(rendered, (300, 300))
    assert near(medium.getpixel((20, 20)), (255, 255, 255), 8)
    assert near(medium.getpixel((150, 150)), (0, 0, 0), 8)


def test_palette_gif_keeps_its_colours() -> None:
    rendered = render(corpus.palette_gif(), LIMITS)

    _, medium = assert_derivatives(rendered, (300, 300))
    assert rendered.format == "GIF"
    assert near(medium.getpixel((150, 50)), corpus.RED) and near(medium.getpixel((150, 250)), corpus.GREEN)


def test_palette_gif_transparency_is_flattened_on_white() -> None:
    rendered = render(corpus.palette_gif(transparent=True), LIMITS)

    _, medium = assert_derivatives(rendered, (300, 300))
    assert near(medium.getpixel((150, 50)), corpus.RED) and near(medium.getpixel((150, 250)), (255, 255, 255), 8)


def test_animated_gif_uses_its_first_frame() -> None:
    rendered = render(corpus.animated_gif(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (240, 240))
    assert near(medium.getpixel((120, 120)), corpus.RED) and near(thumb.getpixel((100, 100)), corpus.RED)


def test_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white() -> None:
    rendered = render(corpus.png_16bit(40000), LIMITS)

    _, medium = assert_derivatives(rendered, (300, 200))
    value = medium.getpixel((150, 100))
    assert isinstance(value, int)
    assert abs(value - 40000 // 256) <= 3  # 156: a clipping conversion gives 255


def test_grayscale_stays_grayscale() -> None:
    rendered = render(corpus.grayscale_jpeg(), LIMITS)

    thumb, medium = assert_derivatives(rendered, (500, 400))
    assert thumb.mode == medium.mode == "L"
    assert abs(int(medium.getpixel((100, 200))) - 40) <= 6  # type: ignore[arg-type]
    assert abs(int(medium.getpixel((400, 200))) - 220) <= 6  # type: ignore[arg-type]


# --- failures --------------------------------------------------------------------------------------------------------


def test_zero_bytes_is_empty() -> None:
    assert reason_of(b"") == Reason.EMPTY


def test_text_named_jpg_is_not_an_image() -> None:
    assert reason_of(corpus.text_named_jpg()) == Reason.NOT_AN_IMAGE


def test_truncated_jpeg_is_truncated() -> None:
    assert reason_of(corpus.truncated_jpeg()) == Reason.TRUNCATED


def test_truncated_png_is_truncated() -> None:
    data = corpus.encode(corpus.photo_like(300, 200), "PNG")
    assert reason_of(data[: len(data) // 2]) == Reason.TRUNCATED


def test_decompression_bomb_is_refused_from_its_header_by_the_pixel_cap() -> None:
    assert reason_of(corpus.png_header_only(8000, 8000)) == Reason.TOO_MANY_PIXELS


def test_bomb_beyond_pillows_own_limit_is_still_too_many_pixels() -> None:
    huge = Limits(max_bytes=LIMITS.max_bytes, max_pixels=10**12)
    assert reason_of(corpus.png_header_only(30000, 30000), huge) == Reason.TOO_MANY_PIXELS


def test_pixel_cap_comes_from_the_limits() -> None:
    data = corpus.encode(Image.new("RGB", (1000, 1000), corpus.RED), "PNG")
    assert reason_of(data, Limits(max_bytes=LIMITS.max_bytes, max_pixels=999_999)) == Reason.TOO_MANY_PIXELS
    render(data, Limits(max_bytes=LIMITS.max_bytes, max_pixels=1_000_000))  # exactly at the cap is fine


def test_bytes_over_the_cap_are_too_large() -> None:
    data = corpus.one_pixel_png()
    assert reason_of(data, Limits(max_bytes=len(data) - 1, max_pixels=LIMITS.max_pixels)) == Reason.TOO_LARGE_BYTES


def test_size_check_needs_no_bytes() -> None:
    with pytest.raises(ImageRejected) as caught:
        check_size(11, 10)
    assert caught.value.reason == Reason.TOO_LARGE_BYTES
    with pytest.raises(ImageRejected) as caught:
        check_size(0, 10)
    assert caught.value.reason == Reason.EMPTY
    check_size(10, 10)


def test_formats_outside_the_allowed_list_are_unsupported() -> None:
    assert reason_of(corpus.encode(Image.new("RGB", (10, 10)), "PPM")) == Reason.UNSUPPORTED


def test_corrupt_png_data_is_corrupt_not_truncated() -> None:
    data = bytearray(corpus.encode(corpus.photo_like(200, 100), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start : start + 64] = bytes(64)  # zero the zlib header and the first compressed bytes: complete but invalid
    assert reason_of(bytes(data)) == Reason.CORRUPT


def test_band_split_resize_matches_a_plain_resize(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "_cpu_count", lambda: 2)
    source = corpus.photo_like(1600, 1200)

    split = imaging.resize(source, (800, 600))

    plain = source.resize((800, 600), imaging.MEDIUM_FILTER)
    assert split.size == (800, 600)
    extrema: Any = ImageChops.difference(split, plain).getextrema()
    assert all(high <= 1 for _, high in extrema)


def test_single_cpu_and_multi_cpu_renders_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    data = corpus.photo_12mp_with_red_sides()
    monkeypatch.setattr(imaging, "_cpu_count", lambda: 1)
    one = render(data, LIMITS)
    monkeypatch.setattr(imaging, "_cpu_count", lambda: 2)
    two = render(data, LIMITS)

    assert (one.medium.width, one.medium.height) == (two.medium.width, two.medium.height) == (800, 600)
    extrema: Any = ImageChops.difference(decoded(one.medium.data), decoded(two.medium.data)).getextrema()
    assert all(high <= 8 for _, high in extrema)  # 1 level of resampling rounding, after JPEG


def test_mpo_uses_its_first_picture_at_draft_size() -> None:
    rendered = render(corpus.mpo_two_pictures(), LIMITS)

    assert (rendered.format, rendered.width, rendered.height) == ("MPO", 2400, 1600)
    _, medium = assert_derivatives(rendered, (800, 533))
    assert near(medium.getpixel((20, 20)), corpus.RED) and near(medium.getpixel((780, 510)), corpus.YELLOW)
