"""One module per dataset adapter (module name = the name ``ctr_data.source`` / ``rec_data.source`` take)."""
