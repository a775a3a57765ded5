"""The live panorama: the state the pages and the gateway show, read from the rollups."""
