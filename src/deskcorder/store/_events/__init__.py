"""The event plane: where event files live and how they are sealed, keyed and read back.

``_layout``    the partition layout (``events/date=.../device=...``), the per-column file format, sorting
``_backends``  ``EventFiles``: local disk (fsync + atomic rename) or an object store (acknowledged PUT)
``_sealed``    AES-256-GCM sealing of a whole file under its employee's data key
``_keys``      the master key and the wrapping of data keys
``_reader``    which manifest-listed files a read selects, and their events decrypted and sorted
``_clock``     refusing events stamped too far ahead of the store's clock
"""
