"""Pure Plotly figure builders: the city map, trends, street bars and the incident map."""
