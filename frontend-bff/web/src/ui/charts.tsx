// TradingView Lightweight Charts (loaded on demand: the chart code stays out of the first
// page's bundle). Chart coordinates are plotted as numbers; money is never computed here.
import { AreaSeries, CandlestickSeries, ColorType, HistogramSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from "lightweight-charts";
import { useEffect, useRef } from "react";

export interface CandlePoint { timestamp: string; open: string; high: string; low: string; close: string; volume: string }
export interface ValuePoint { timestamp: string; value: string }

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function baseOptions(height: number) {
  return {
    height,
    autoSize: true,
    // The TradingView logo injects a <style> element the CSP refuses; the attribution notice and
    // link are shown under every chart (and in Settings) instead, as the licence asks.
    layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: css("--muted"), fontFamily: css("--font"), attributionLogo: false },
    grid: { vertLines: { visible: false }, horzLines: { color: css("--grid") } },
    rightPriceScale: { borderVisible: false },
    // Room right of the newest bar, so its time label is never cut off by the price scale.
    timeScale: { borderVisible: false, timeVisible: true, secondsVisible: false, rightOffset: 6 },
    crosshair: { horzLine: { labelBackgroundColor: css("--surface-3") }, vertLine: { labelBackgroundColor: css("--surface-3") } },
  };
}

const seconds = (iso: string) => Math.floor(new Date(iso).getTime() / 1000) as UTCTimestamp;

export function CandleChart({ candles, label, theme }: { candles: CandlePoint[]; label: string; theme: string }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<{ price: ISeriesApi<"Candlestick">; volume: ISeriesApi<"Histogram"> } | null>(null);

  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, baseOptions(340));
    const up = css("--up");
    const down = css("--down");
    const price = c.addSeries(CandlestickSeries, { upColor: up, downColor: down, borderVisible: false, wickUpColor: up, wickDownColor: down });
    const volume = c.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "", lastValueVisible: false, priceLineVisible: false });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    price.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.26 } });
    chart.current = c;
    series.current = { price, volume };
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
    };
  }, [theme]);

  useEffect(() => {
    const s = series.current;
    if (!s) return;
    const up = css("--up-soft");
    const down = css("--down-soft");
    s.price.setData(candles.map((k) => ({ time: seconds(k.timestamp), open: Number(k.open), high: Number(k.high), low: Number(k.low), close: Number(k.close) })));
    s.volume.setData(candles.map((k) => ({ time: seconds(k.timestamp), value: Number(k.volume), color: Number(k.close) >= Number(k.open) ? up : down })));
  }, [candles, theme]);

  return <div className="chart" ref={box} role="figure" aria-label={label} />;
}

export function ValueChart({ points, label, theme, tone }: { points: ValuePoint[]; label: string; theme: string; tone: "up" | "down" | "flat" }) {
  const box = useRef<HTMLDivElement>(null);
  const series = useRef<ISeriesApi<"Area"> | null>(null);

  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, { ...baseOptions(240), handleScroll: false, handleScale: false });
    const color = css(tone === "down" ? "--down" : "--up");
    series.current = c.addSeries(AreaSeries, { lineColor: color, topColor: `${color}55`, bottomColor: `${color}00`, lineWidth: 2, priceLineVisible: false });
    return () => {
      c.remove();
      series.current = null;
    };
  }, [theme, tone]);

  useEffect(() => {
    const seen = new Set<number>();
    const data = points
      .map((p) => ({ time: seconds(p.timestamp), value: Number(p.value) }))
      .filter((p) => (seen.has(p.time) ? false : (seen.add(p.time), true)))
      .sort((a, b) => a.time - b.time);
    series.current?.setData(data);
  }, [points, theme, tone]);

  return <div className="chart chart-sm" ref={box} role="figure" aria-label={label} />;
}

export default { CandleChart, ValueChart };
