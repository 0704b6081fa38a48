"""The market engine shared by every venue: trade tapes, generation, replay and aggregation."""
