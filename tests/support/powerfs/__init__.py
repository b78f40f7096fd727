"""A FUSE passthrough that forgets what was never made durable (issue 12).

``model.DurableModel`` keeps the record of what an fsync made durable; ``ops.PowerOps``
is the passthrough that feeds it; ``daemon`` mounts it (libfuse3 through mfusepy) and,
once unmounted, rewrites the backing directory to exactly the durable state;
``mount.PowerMount`` drives that from a test: mount, cut power, mount again.
"""
