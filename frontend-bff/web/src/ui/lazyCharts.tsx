import { lazy } from "react";

export const CandleChart = lazy(() => import("./charts").then((m) => ({ default: m.CandleChart })));
export const ValueChart = lazy(() => import("./charts").then((m) => ({ default: m.ValueChart })));
