"""Object storage (S3 and S3-compatible stores): recordings and manifests read from a bucket,
GIFs published to one. See :mod:`highlights.storage.objects`."""
