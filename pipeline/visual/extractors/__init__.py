"""Built-in extractors, one module each, named as registered (``EXTRACTORS`` lists them without importing).

Importing a module registers its extractor; ``pipeline.visual.extractor.EXTRACTORS.get(name)`` does it on demand.
"""
