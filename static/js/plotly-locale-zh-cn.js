// plotly.js in Simplified Chinese: month and day names on date axes, and the toolbar's tooltips.
// The plotly wheel ships plotly.min.js without its locale files, so ours registers the locale itself.
// Charts use it through plotlyConfig(): `locale: "zh-CN"` on pages whose <html lang> is Chinese.
(function () {
  "use strict";
  var LOCALE = "zh-CN";
  var months = ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"];

  function register(Plotly) {
    if (!Plotly || !Plotly.register || register.done) return;
    register.done = true;
    Plotly.register({
      moduleType: "locale",
      name: LOCALE,
      dictionary: {
        "Autoscale": "自动缩放",
        "Box Select": "矩形选择",
        "Lasso Select": "套索选择",
        "Compare data on hover": "悬停时比较数据",
        "Show closest data on hover": "悬停时显示最近的数据",
        "Toggle Spike Lines": "显示/隐藏辅助线",
        "Double-click on legend to isolate one trace": "双击图例只显示这一组数据",
        "Double-click to zoom back out": "双击恢复原始大小",
        "Download plot as a png": "下载为 PNG 图片",
        "Download plot as a PNG": "下载为 PNG 图片",
        "Download plot as JSON": "下载为 JSON 文件",
        "Download plot": "下载图表",
        "Share chart...": "分享图表…",
        "Share chart": "分享图表",
        "Toggle show closest data on hover": "悬停时显示/隐藏最近的数据",
        "Toggle attribution": "显示/隐藏来源说明",
        "Image download succeeded": "图片已下载",
        "Image capture already in progress.": "正在生成图片，请稍候。",
        "Sorry, there was a problem downloading your image!": "抱歉，下载图片时出错！",
        "Sorry, there was a problem downloading your JSON file!": "抱歉，下载 JSON 文件时出错！",
        "Pan": "平移",
        "Reset": "重置",
        "Reset axes": "重置坐标轴",
        "Reset view": "重置视图",
        "Reset views": "重置视图",
        "Zoom": "缩放",
        "Zoom in": "放大",
        "Zoom out": "缩小",
        "Taking snapshot - this may take a few seconds": "正在生成图片，请稍候",
        "Snapshot succeeded": "图片已生成",
        "Sorry, there was a problem downloading your snapshot!": "抱歉，下载图片时出错！",
        "Produced with Plotly.js": "由 Plotly.js 生成",
        "trace": "数据系列",
        "max:": "最大值：",
        "min:": "最小值：",
        "mean:": "平均值：",
        "median:": "中位数：",
        "q1:": "第一四分位数：",
        "q3:": "第三四分位数：",
        "upper fence:": "上限：",
        "lower fence:": "下限：",
      },
      format: {
        days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
        shortDays: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
        months: months,
        shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
        date: "%Y-%m-%d",
        decimal: ".",
        thousands: ",",
      },
    });
  }

  // The plotly config for this page: its language, and the locale registered once plotly is loaded.
  window.plotlyConfig = function (extra) {
    var lang = (document.documentElement.lang || "en").toLowerCase();
    var config = Object.assign({ displaylogo: false, responsive: true }, extra || {});
    if (lang.indexOf("zh") === 0) {
      register(window.Plotly);
      config.locale = LOCALE;
    }
    return config;
  };
})();
