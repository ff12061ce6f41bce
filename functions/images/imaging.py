"""Image maths: bytes in, a thumbnail and a medium JPEG out. Pure functions; no AWS, no events, no logging.

The whole pipeline decodes the upload once. For JPEG the decoder is asked for the smallest DCT-scaled size
(1/2, 1/4 or 1/8) that is still at least as large as both targets need (`Image.draft`), which cuts decode time and
memory by up to 64x on a camera photo; both derivatives are then resampled from that one reduced image (BICUBIC
for the medium, LANCZOS for the thumbnail cropped from it). Every way a file can be unusable maps to one
`Reason`, so the caller can record it and move on.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from functions.images.errors import ImageRejected, Reason
from functions.images.models import Derivative, Limits, Rendered

THUMBNAIL_SIZE = (200, 200)
THUMBNAIL_QUALITY = 80
MEDIUM_BOX = (800, 800)
MEDIUM_QUALITY = 90
MEDIUM_FILTER = Image.Resampling.BICUBIC
WHITE = (255, 255, 255)

# Formats we decode. Anything else Pillow can identify (EPS, PSD, ICNS, ...) is refused as UNSUPPORTED: fewer
# decoders on a path fed by strangers, and no format that shells out to another program (EPS runs Ghostscript).
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP"})

_SRGB = ImageCms.createProfile("sRGB")


def check_size(size: int, max_bytes: int) -> None:
    """Refuse an upload by its byte count alone, so an oversized or empty object is never downloaded."""
    if size <= 0:
        raise ImageRejected(Reason.EMPTY, "the object is empty (0 bytes)")
    if size > max_bytes:
        raise ImageRejected(Reason.TOO_LARGE_BYTES, f"the object has {size} bytes, more than the cap of {max_bytes}")


def medium_size(width: int, height: int, box: tuple[int, int] = MEDIUM_BOX) -> tuple[int, int]:
    """Fit `width` x `height` inside `box` keeping the aspect ratio; never upscale; never below 1 pixel."""
    scale = min(box[0] / width, box[1] / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def cover_size(width: int, height: int, box: tuple[int, int] = THUMBNAIL_SIZE) -> tuple[int, int]:
    """The size `width` x `height` must be scaled to so that it covers `box` (before the centred crop)."""
    scale = max(box[0] / width, box[1] / height)
    return max(box[0], math.ceil(width * scale)), max(box[1], math.ceil(height * scale))


def decode_size(width: int, height: int) -> tuple[int, int]:
    """The smallest size both derivatives can be made from without upscaling anything the original had."""
    mw, mh = medium_size(width, height)
    cw, ch = cover_size(width, height)
    return min(width, max(mw, cw)), min(height, max(mh, ch))


def render(data: bytes, limits: Limits) -> Rendered:
    """Decode `data` once and make both derivatives, or raise `ImageRejected` with the reason."""
    check_size(len(data), limits.max_bytes)
    image = _open(data, limits.max_pixels)
    try:
        source_format = image.format or "UNKNOWN"
        width, height = image.size  # the stored size: draft mode below may decode fewer pixels
        oriented = _decode(image)
        if _orient(oriented):
            width, height = height, width
        transform = srgb_transform(oriented)
        base = oriented if transform is not None else to_display(oriented)
        medium = resize_medium(base, original_size=(width, height))
        # The medium already holds every pixel the thumbnail needs when it covers 200x200: resampling it is 3x
        # cheaper than resampling the decoded image again, and measured no worse (bench/images).
        covers = medium.width >= THUMBNAIL_SIZE[0] and medium.height >= THUMBNAIL_SIZE[1]
        thumbnail, medium_jpeg = _both(
            lambda: _derivative(crop_thumbnail(medium if covers else base), THUMBNAIL_QUALITY, transform),
            lambda: _derivative(medium, MEDIUM_QUALITY, transform),
        )
        return Rendered(width=width, height=height, format=source_format, thumbnail=thumbnail, medium=medium_jpeg)
    finally:
        image.close()


def crop_thumbnail(image: Image.Image) -> Image.Image:
    """Exactly 200x200: scaled to cover, centred crop (upscaled when the image is smaller)."""
    return ImageOps.fit(image, THUMBNAIL_SIZE, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def resize_medium(image: Image.Image, *, original_size: tuple[int, int] | None = None) -> Image.Image:
    """Inside 800x800 keeping the aspect ratio of the original (not of a draft-rounded size); never upscaled."""
    size = medium_size(*(original_size or image.size))
    return image if size == image.size else resize(image, size)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The medium's resize; on a multi-core machine it is split in two bands resized at the same time.

    BICUBIC, not LANCZOS: against an ideal float LANCZOS resize the two measure the same (within 0.1 dB PSNR for
    JPEGs from draft mode and for a 12 MP PNG, bench/images) and BICUBIC's narrower kernel costs about a quarter
    less CPU; that, and splitting from 0.3 MP up, takes 12 MP and 24 MP photos under 0.6x of the seed's sharp code.

    Pillow releases the GIL while resampling, and a band resized with its source box uses exactly the filter
    taps (including rows outside the band) of the whole resize, so the halves join without a seam (at most 1 level
    of rounding differs). Lambda gives 2 vCPUs from 1769 MB; with one, this is a plain resize.
    """
    width, height = size
    if height < 2 * _MIN_BAND_ROWS or image.width * image.height < _PARALLEL_MIN_PIXELS:
        return image.resize(size, MEDIUM_FILTER)
    half = height // 2
    split = half * image.height / height
    top, bottom = _both(
        lambda: image.resize((width, half), MEDIUM_FILTER, (0, 0, image.width, split)),
        lambda: image.resize((width, height - half), MEDIUM_FILTER, (0, split, image.width, image.height)),
    )
    out = Image.new(image.mode, size)
    out.paste(top, (0, 0))
    out.paste(bottom, (0, half))
    return out


_MIN_BAND_ROWS = 64
_PARALLEL_MIN_PIXELS = 300_000
_POOL: ThreadPoolExecutor | None = None
A = TypeVar("A")
B = TypeVar("B")


def _both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Run `second` on the helper thread while `first` runs here (Pillow's C code releases the GIL); inline when
    there is one CPU."""
    if _cpu_count() < 2:
        return first(), second()
    pending = _pool().submit(second)
    return first(), pending.result()


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resize")
    return _POOL


def _derivative(image: Image.Image, quality: int, transform: ImageCms.ImageCmsTransform | None) -> Derivative:
    # Colour management runs on the small derivative, not the decoded original: same result to the eye, far cheaper.
    if transform is not None:
        image = ImageCms.applyTransform(image, transform) or image
    return Derivative(data=encode_jpeg(image, quality), width=image.width, height=image.height)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG at `quality` (the derivative's only metadata is what a browser needs: none)."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the file from its header only, and refuse what we will not decode before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning/error uses a global cap; ours (below) is the one from configuration.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageRejected(Reason.TOO_MANY_PIXELS, str(exc)) from None
    except UnidentifiedImageError:
        raise ImageRejected(Reason.NOT_AN_IMAGE, "the data is not an image in any known format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # A recognised header whose fields are inconsistent (a plugin raised while parsing it).
        raise ImageRejected(Reason.CORRUPT, f"unreadable image header: {exc}") from None
    if image.format not in ALLOWED_FORMATS:
        image.close()
        raise ImageRejected(Reason.UNSUPPORTED, f"{image.format} images are not accepted")
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageRejected(Reason.CORRUPT, f"the image declares a size of {width}x{height}")
    if width * height > max_pixels:
        image.close()
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS, f"{width}x{height} is {width * height} pixels, more than the cap of {max_pixels}"
        )
    return image


def _decode(image: Image.Image) -> Image.Image:
    """Decode the first frame, at a DCT-reduced size for JPEG when the targets allow it."""
    try:
        if image.format in ("JPEG", "MPO"):
            # draft() keeps the scale that still gives at least the requested size; it only configures the decoder.
            image.draft("RGB" if image.mode == "RGB" else image.mode, decode_size(*image.size))
        # Animated GIF/WebP/APNG, multi-page TIFF, MPO: open() is positioned on the first frame, which is the
        # picture (tests cover GIF and MPO); no seek, so nothing can reset the draft configured above.
        image.load()
    except OSError as exc:
        message = str(exc)
        # Pillow reports data that ends early only through OSError's text; anything else is corrupt data.
        reason = Reason.TRUNCATED if "truncated" in message else Reason.CORRUPT
        raise ImageRejected(reason, f"cannot decode the image: {message}") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        # Plugins let these escape on malformed chunks; the bytes will never decode, so this is permanent.
        raise ImageRejected(Reason.CORRUPT, f"cannot decode the image: {exc}") from None
    return image


def _orient(image: Image.Image) -> bool:
    """Apply the EXIF orientation in place (phones store pixels sideways and say so); True if it swapped the axes."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        ImageOps.exif_transpose(image, in_place=True)
    except (SyntaxError, ValueError, OSError, KeyError, TypeError, struct.error):
        return False  # unreadable EXIF: keep the pixels as stored rather than refuse a decodable picture
    return orientation in (5, 6, 7, 8)


def to_display(image: Image.Image) -> Image.Image:
    """An 'RGB' (or 'L' for grayscale) image: what a JPEG derivative can hold, alpha flattened on white."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _deep_to_l(image)
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        has_alpha = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
        return _flatten(image.convert("RGBA")) if has_alpha else image.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten(image.convert("RGBA"))
    try:
        return image.convert("RGB")  # CMYK without a profile, RGBX, YCbCr, LAB, HSV
    except ValueError as exc:
        raise ImageRejected(Reason.UNSUPPORTED, f"pixel mode {mode} cannot be shown as RGB: {exc}") from None


def srgb_transform(image: Image.Image) -> ImageCms.ImageCmsTransform | None:
    """A transform from the image's embedded ICC profile to sRGB, when it has a usable non-sRGB one.

    Wide-gamut phone photos (Display P3) and print CMYK look wrong when their numbers are read as sRGB. A broken
    profile is ignored (Pillow's plain conversion is used) rather than failing an otherwise good picture.
    """
    data = image.info.get("icc_profile")
    if not data or image.mode not in ("RGB", "CMYK"):
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        space = str(profile.profile.xcolor_space).strip()
        if space != image.mode or (space == "RGB" and "sRGB" in str(profile.profile.profile_description)):
            return None
        return ImageCms.buildTransform(profile, _SRGB, image.mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _flatten(rgba: Image.Image) -> Image.Image:
    """Composite onto white: JPEG has no alpha, and black (what dropping alpha gives) hides dark logos."""
    background = Image.new("RGB", rgba.size, WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _deep_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale to 8 bits by scaling its range (convert('L') would clip to white)."""
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    extrema = image.getextrema()
    high = float(extrema[1])  # type: ignore[arg-type]  # single-band: (min, max)
    if image.mode == "F":
        scale = 255.0 if high <= 1.0 else 255.0 / high  # float data in 0..1 (common) or an arbitrary range
        return image.point(lambda v: v * scale).convert("L")
    if high <= 255:
        return image.convert("L")
    divisor = 256.0 if high <= 65535 else high / 255.0
    return image.point(lambda v: v * (1 / divisor)).convert("L")
