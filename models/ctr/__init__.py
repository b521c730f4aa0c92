"""CTR models, one short module each, registered by name in ``models.ctr.registry``."""
