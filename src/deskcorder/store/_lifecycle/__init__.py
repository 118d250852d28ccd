"""The lifecycle plane: what leaves the store, and how.

``_erasure``    erasing an employee and everything recorded of them (re-runnable after a crash)
``_selective``   deleting one session or one UTC day of an employee, their data key replaced
``_retention``  deleting whole date partitions past the policy's retention
``_export``     a subject access export: everything about one employee in a readable zip
"""
