/** Required attribution whenever a figure comes from the bundled Electricity Maps traces (ODbL 1.0). */
export const ELECTRICITY_MAPS_ATTRIBUTION =
  'Contains data from Electricity Maps (https://www.electricitymaps.com), ODbL 1.0.';
