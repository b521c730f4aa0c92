"""The multimodal micro-video classifier: aggregation, fusion, shared/private encoders and their losses."""
