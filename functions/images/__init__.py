"""Image pipeline: S3 uploads under original/ become a 200x200 thumbnail, an 800x800 medium and a metadata item."""
