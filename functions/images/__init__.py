"""Image pipeline: S3 uploads under original/ become a 200x200 thumbnail, an 800x800 medium and a metadata item.

Besides the common shape (see `functions`): `imaging` (the image maths on Pillow) and `keys` (where objects live in the
bucket: prefixes and derivative keys, shared with the Pulumi program).
"""
