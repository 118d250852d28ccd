"""The people plane: who is recorded, on which devices, with what consent, and who looked.

``_employees``       employees, their wrapped data keys, their registered devices
``_enrolment``       one-time enrolment tokens, device credentials, revocation
``_consent``         policies, consent history, and whether a device may record now
``_audit``           the hash-chained audit log
``_accounts``        portal accounts, logins and recording pauses (``EventStore.portal``)
``_login_throttle``  failed-login counting and lock-out
"""
